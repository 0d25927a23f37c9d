import path from 'node:path';
import { expect } from 'chai';
import { CORE_KINDS, serviceId } from '../../src/core/kinds.ts';
import { builtinPluginFiles, createRegistry, PluginLoadError, PluginRegistry, type RegisteredPlugin } from '../../src/core/registry.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { fixtures, writeFiles } from '../helpers.ts';

describe('plugin registry (inversify)', () => {
  it('binds every built-in plugin under its kind’s service identifier, by name', async () => {
    const registry = await createRegistry();
    for (const kind of [
      'dataset',
      'sampler',
      'face-boxes',
      'backbone',
      'pretrain',
      'mixing',
      'kappa',
      'mix-loss',
      'ssl',
      'augment',
      'tracker',
      'analysis',
    ] as const) {
      expect(registry.hasKind(kind), kind).to.equal(true);
      expect(registry.namesOf(kind).length, kind).to.be.greaterThan(0);
    }
    expect(registry.namesOf('kappa')).to.deep.equal(['fsim', 'iou', 'psnr', 'ssim']);
    expect(registry.namesOf('mix-loss')).to.deep.equal(['L1', 'L2', 'L3', 'L4']);
    expect(registry.namesOf('mixing')).to.include.members(['none', 'mixup', 'facemix']);
    expect(registry.namesOf('analysis')).to.deep.equal(['fgsm-regions', 'gradcam', 'params-flops']);
    // The container itself answers named lookups.
    const found = registry.container.get<RegisteredPlugin>(serviceId('kappa'), { name: 'ssim' });
    expect(found.definition.name).to.equal('ssim');
    expect(found.origin.file).to.match(/plugins\/kappa\/ssim\.ts$/);
    expect(registry.container.isBound(serviceId('kappa'), { name: 'fsim' })).to.equal(true);
    expect(registry.container.isBound(serviceId('kappa'), { name: 'nope' })).to.equal(false);
    // ...and lists them: the container is the only record of what is registered.
    expect(registry.container.getAll<RegisteredPlugin>(serviceId('mix-loss')).map((r) => r.definition.name)).to.have.members(['L1', 'L2', 'L3', 'L4']);
  });

  it('learns the kinds FaceMix declares from its module; the core names only its own', async () => {
    expect(CORE_KINDS.map((k) => k.name)).to.not.include.members(['kappa']);
    expect(CORE_KINDS.map((k) => k.name)).to.not.include.members(['mix-loss']);
    const registry = await createRegistry();
    const kinds = registry.kinds();
    expect(kinds.map((k) => k.name).slice(0, CORE_KINDS.length)).to.deep.equal(CORE_KINDS.map((k) => k.name));
    const kappa = kinds.find((k) => k.name === 'kappa')!;
    expect(kappa.origin.file).to.match(/plugins\/mixing\/facemix\.ts$/);
    expect(kinds.find((k) => k.name === 'mix-loss')!.origin.file).to.equal(kappa.origin.file);
  });

  it('registers a user module that declares a kind and a plugin of it, and refuses a kind declared twice', async () => {
    const dir = writeFiles({
      'kinds.mjs': [
        "export const kinds = [{ name: 'test-metric', description: 'a kind a user plugin declares' }];",
        "export default { kind: 'test-metric', name: 'one', description: 'always 1', options: { type: 'object', properties: {} }, create: () => ({ value: 1 }) };",
        '',
      ].join('\n'),
      'again.mjs': "export const kinds = [{ name: 'kappa', description: 'again' }];\n",
    });
    const registry = await createRegistry([path.join(dir, 'kinds.mjs')]);
    expect(registry.namesOf('test-metric')).to.deep.equal(['one']);
    expect(registry.create('test-metric', { use: 'one' }, { seed: 1, scale: 'smoke', recipeDir: '.' })).to.deep.equal({ value: 1 });
    let err: unknown;
    try {
      await registry.loadFile(path.join(dir, 'again.mjs'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PluginLoadError);
    expect((err as Error).message).to.match(/again\.mjs: kind 'kappa' is already declared by .*plugins\/mixing\/facemix\.ts; choose another name/);
  });

  it('finds built-ins by scanning the folders of plugins/, not by importing them by name', () => {
    const files = builtinPluginFiles().map((f) => path.relative(path.dirname(path.dirname(path.dirname(f))), f));
    expect(files).to.include('plugins/kappa/iou.ts');
    expect(files.some((f) => f.includes('/internal/'))).to.equal(false);
  });

  it('creates plugins per cell with validated options, resolving nested slots', async () => {
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    const facemix = registry.create('mixing', { use: 'facemix', alpha: 1, kappa: { use: 'iou' }, loss: { use: 'L4' } }, ctx);
    expect(facemix.name).to.equal('facemix(iou, L4)');
  });

  it('loads a user plugin that exists only under test/fixtures, from a recipe', async () => {
    const r = await resolveRecipe(path.join(fixtures, 'recipes', 'with-plugin.yaml'));
    expect(r.registry.has('mixing', 'cutmix-test')).to.equal(true);
    expect(r.registry.origin('mixing', 'cutmix-test')!.builtin).to.equal(false);
    const cfg = r.cells[0]!.config as any;
    expect(cfg.pipeline.supervised.mixing).to.deep.equal({ use: 'cutmix-test', alpha: 0.4 });
    const made = r.registry.create('mixing', cfg.pipeline.supervised.mixing, { seed: 1, scale: 'small', recipeDir: '.' });
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
    expect((err as Error).message).to.match(
      /bad\.mjs: invalid plugin definition: kind must be one of .*; description must be a one-line string; options must be a JSON Schema.*; create must be a function/,
    );
    const full = await createRegistry();
    try {
      await full.loadFile(path.join(dir, 'clash.mjs'));
      expect.fail('expected a clash');
    } catch (e) {
      expect((e as Error).message).to.match(/kappa plugin 'iou' is already registered by .*plugins\/kappa\/iou\.ts; choose another name/);
    }
  });

  it('keeps a definition’s literal types through definePlugin', () => {
    const def = definePlugin({
      kind: 'test-kind',
      name: 'k',
      description: 'd',
      options: options({ n: Type.Integer({ default: 2 }) }),
      create: (o) => o.n * 21,
    });
    expect(def.kind).to.equal('test-kind');
    expect(def.create({ n: 2 }, { seed: 0, scale: 'smoke', recipeDir: '.', resolve: () => undefined as never })).to.equal(42);
  });
});
