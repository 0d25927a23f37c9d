import path from 'node:path';
import { expect } from 'chai';
import { KINDS, ServiceIds } from '../../src/core/kinds.ts';
import { builtinPluginFiles, createRegistry, PluginLoadError, PluginRegistry } from '../../src/core/registry.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { fixtures, writeFiles } from '../helpers.ts';

describe('plugin registry (inversify)', () => {
  it('binds every built-in plugin under its kind’s service identifier, by name', async () => {
    const registry = await createRegistry();
    for (const kind of ['dataset', 'sampler', 'face-boxes', 'backbone', 'pretrain', 'mixing', 'kappa', 'mix-loss', 'ssl', 'augment', 'tracker'] as const) {
      expect(KINDS).to.include(kind);
      expect(registry.namesOf(kind).length, kind).to.be.greaterThan(0);
    }
    expect(registry.namesOf('kappa')).to.deep.equal(['fsim', 'iou', 'psnr', 'ssim']);
    expect(registry.namesOf('mix-loss')).to.deep.equal(['L1', 'L2', 'L3', 'L4']);
    expect(registry.namesOf('mixing')).to.include.members(['none', 'mixup', 'facemix']);
    // The container itself answers named lookups.
    const def = registry.container.get<{ name: string }>(ServiceIds.kappa, { name: 'ssim' });
    expect(def.name).to.equal('ssim');
    expect(registry.container.isBound(ServiceIds.kappa, { name: 'fsim' })).to.equal(true);
    expect(registry.container.isBound(ServiceIds.kappa, { name: 'nope' })).to.equal(false);
  });

  it('finds built-ins by scanning plugins/<kind>/, not by importing them by name', () => {
    const files = builtinPluginFiles().map((f) => path.relative(path.dirname(path.dirname(path.dirname(f))), f));
    expect(files).to.include('plugins/kappa/iou.ts');
    expect(files.some((f) => f.includes('/internal/'))).to.equal(false);
  });

  it('creates plugins per cell with validated options, resolving nested slots', async () => {
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    const facemix = registry.create<{ name: string }>('mixing', { use: 'facemix', alpha: 1, kappa: { use: 'iou' }, loss: { use: 'L4' } }, ctx);
    expect(facemix.name).to.equal('facemix(iou, L4)');
  });

  it('loads a user plugin that exists only under test/fixtures, from a recipe', async () => {
    const r = await resolveRecipe(path.join(fixtures, 'recipes', 'with-plugin.yaml'));
    expect(r.registry.has('mixing', 'cutmix-test')).to.equal(true);
    expect(r.registry.origin('mixing', 'cutmix-test')!.builtin).to.equal(false);
    const cfg = r.cells[0]!.config as any;
    expect(cfg.pipeline.supervised.mixing).to.deep.equal({ use: 'cutmix-test', alpha: 0.4 });
    const made = r.registry.create<{ name: string }>('mixing', cfg.pipeline.supervised.mixing, { seed: 1, scale: 'small', recipeDir: '.' });
    expect(made.name).to.equal('cutmix-test(alpha=0.4)');
  });

  it('loads a user plugin given as --plugin, in JavaScript too', async () => {
    const dir = writeFiles({
      'my.mjs': `export default { kind: 'kappa', name: 'always-one', description: 'κ = 1', options: { type: 'object', properties: {} }, create: () => ({ name: 'always-one' }) };\n`,
    });
    const registry = await createRegistry([path.join(dir, 'my.mjs')]);
    expect(registry.namesOf('kappa')).to.include('always-one');
  });

  it('rejects a malformed plugin and a name clash, naming the file', async () => {
    const dir = writeFiles({
      'bad.mjs': `export default { kind: 'kapa', name: 'x', description: '', options: {}, create: 1 };\n`,
      'clash.mjs': `export default { kind: 'kappa', name: 'iou', description: 'again', options: { type: 'object', properties: {} }, create: () => ({}) };\n`,
    });
    const registry = new PluginRegistry();
    let err: unknown;
    try {
      await registry.loadFile(path.join(dir, 'bad.mjs'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PluginLoadError);
    expect((err as Error).message).to.match(/bad\.mjs: invalid plugin definition: kind must be one of .*; description must be a one-line string; options must be a JSON Schema.*; create must be a function/);
    const full = await createRegistry();
    try {
      await full.loadFile(path.join(dir, 'clash.mjs'));
      expect.fail('expected a clash');
    } catch (e) {
      expect((e as Error).message).to.match(/kappa plugin 'iou' is already registered by .*plugins\/kappa\/iou\.ts; choose another name/);
    }
  });

  it('keeps a definition’s literal types through definePlugin', () => {
    const def = definePlugin({ kind: 'kappa', name: 'k', description: 'd', options: { type: 'object' }, create: () => 42 });
    expect(def.create({}, { seed: 0, scale: 'smoke', recipeDir: '.', resolve: () => undefined as never })).to.equal(42);
  });
});
