import path from 'node:path';
import { expect } from 'chai';
import type { PluginSlot } from '../../src/core/plugin.ts';
import { createRegistry } from '../../src/core/registry.ts';
import { cellStageKeys } from '../../src/pipeline/stage-keys.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { writeFiles } from '../helpers.ts';

// A dataset whose pool is drawn with `pool_seed` alone: its other options must not split the pre-training.
const dataset = `export default {
  kind: 'dataset', name: 'pooled', description: 'a dataset whose pool depends on pool_seed only',
  options: { type: 'object', properties: { pool_seed: { type: 'integer', default: 1 }, classes: { type: 'integer', default: 7 } } },
  create: (o) => ({ load: async () => { throw new Error('not loaded'); }, pool: async () => { throw new Error('not drawn'); }, poolKey: () => ({ pool_seed: o.pool_seed }) }),
};
`;

describe('stage keys', () => {
  it('share a pre-training between the cells whose datasets give the same pool key, whatever their other options', async () => {
    const dir = writeFiles({
      'pooled.mjs': dataset,
      'r.yaml': [
        'title: t',
        'plugins: [./pooled.mjs]',
        'data: { dataset: { use: pooled } }',
        'grid:',
        '  rows: [{ name: pool, path: data.dataset.pool_seed, values: [1, 2] }]',
        '  columns: [{ name: classes, path: data.dataset.classes, values: [7, 8] }]',
        '',
      ].join('\n'),
    });
    const recipe = await resolveRecipe(path.join(dir, 'r.yaml'));
    const keys = recipe.cells.map((c) => cellStageKeys(recipe.registry, c.config, { seed: c.config.seed, scale: recipe.scale, recipeDir: dir }));
    expect(recipe.cells.map((c) => c.id)).to.deep.equal(['pool=1/classes=7', 'pool=1/classes=8', 'pool=2/classes=7', 'pool=2/classes=8']);
    expect(keys[0]!.pretrain).to.equal(keys[1]!.pretrain);
    expect(keys[2]!.pretrain).to.equal(keys[3]!.pretrain);
    expect(keys[0]!.pretrain).to.not.equal(keys[2]!.pretrain);
    // The later stages read the cell's own data: they are never shared across datasets.
    expect(new Set(keys.map((k) => k.supervised)).size).to.equal(4);
  });

  it('give the built-in stand-ins of a table one pool key, and the synthetic set its own', async () => {
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    const key = (slot: PluginSlot) => JSON.stringify(registry.create('dataset', slot, ctx).poolKey());
    const standIn = key({ use: 'rafdb', root: null, on_error: 'fail', classes: 7, stand_in: { pose: 0.2 } });
    expect(key({ use: 'affectnet', root: null, on_error: 'fail', classes: 8, stand_in: { pose: 0.2 } })).to.equal(standIn);
    expect(key({ use: 'ferplus', root: null, on_error: 'fail', classes: 8, stand_in: { pose: 0.3 } })).to.not.equal(standIn);
    expect(key({ use: 'synthetic-faces', classes: 7 })).to.equal(key({ use: 'synthetic-faces', classes: 8 }));
  });
});
