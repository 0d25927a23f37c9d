import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import pkg from '../../package.json' with { type: 'json' };
import type { Backbone, BackboneFactory } from '../../src/contracts/backbone.ts';
import type { Split } from '../../src/contracts/dataset.ts';
import { createRegistry } from '../../src/core/registry.ts';
import { deriveSeed } from '../../src/core/rng.ts';
import { RunScope } from '../../src/pipeline/scope.ts';
import { runCell, type CellMetrics } from '../../src/pipeline/cell.ts';
import { evaluate } from '../../src/pipeline/evaluate.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import {
  MODEL_FORMAT_VERSION,
  findModelDir,
  keepCellModel,
  loadModelBundle,
  MANIFEST_FILE,
  ModelBundleError,
  saveModelBundle,
  WEIGHTS_FILE,
  type ModelOrigin,
} from '../../src/model/bundle.ts';
import { fixtures, tempDir } from '../helpers.ts';

const recipeFile = path.join(fixtures, 'recipes', 'keep-model.yaml');
const linearPlugin = path.join(fixtures, 'plugins', 'linear-backbone.ts');

function logitsOf(model: Backbone, split: Split): Float32Array {
  const s = model.imageSize;
  return tf.tidy(() => model.logits(tf.tensor4d(split.images, [split.size, s, s, 3])).dataSync() as Float32Array);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

/** Runs the fixture's one cell in process; the bundle is kept as `ssfer run` keeps it. */
async function runKeeping(sets: string[] = []) {
  const recipe = await resolveRecipe(recipeFile, { sets });
  const cell = recipe.cells[0]!;
  const config = cell.config as any;
  const ctx = { seed: config.seed, scale: recipe.scale, recipeDir: fixtures };
  const backbone = recipe.registry.create('backbone', config.model.backbone, ctx);
  const data = await recipe.registry
    .create('dataset', config.data.dataset, ctx)
    .load({ imageSize: backbone.imageSize, trainSize: config.data.size.train, testSize: config.data.size.test });
  const dir = path.join(tempDir(), 'cells', 'default', 'model');
  let inRun: Float32Array | null = null;
  let keptTrainable: boolean | null = null;
  const out = await runCell(new RunScope(recipe.registry), recipe, cell, {
    onStep() {},
    shouldStop: () => false,
    note() {},
    async keepModel(model, about) {
      inRun = logitsOf(model, data.test);
      keptTrainable = [...model.namedVariables().values()].every((v) => v.trainable);
      await keepCellModel(dir, model, { ...about, recipe: recipe.name });
    },
  });
  expect(inRun, 'keepModel was called').to.not.equal(null);
  return { recipe, config, backbone, data, dir, metrics: out.metrics as CellMetrics, inRun: inRun!, keptTrainable: keptTrainable! };
}

describe('saved model bundle', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('keeps a cell’s evaluated model: rebuilt from the bundle it gives the in-run logits on the test images', async () => {
    const before = tf.memory().numTensors;
    const run = await runKeeping();
    const loaded = await loadModelBundle(run.dir);
    try {
      expect(maxAbsDiff(logitsOf(loaded.model, run.data.test), run.inRun)).to.equal(0);
      // Evaluated on the test split, the rebuilt model reproduces the cell's reported result.
      const again = evaluate(loaded.model, run.data.test, 16, 7, 16);
      expect(again.confusion).to.deep.equal(run.metrics.confusion);
      expect(again.accuracy).to.equal(run.metrics.accuracy);
    } finally {
      loaded.model.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);

    const m = loaded.manifest;
    expect(m.format).to.equal('ssfer-model');
    expect(m.format_version).to.equal(MODEL_FORMAT_VERSION);
    expect(m.ssfer_version).to.equal(pkg.version);
    expect(m.classes).to.deep.equal(['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
    expect(m.backbone.plugin).to.equal('vit');
    expect(m.backbone.options).to.include({ dim: 16, depth: 1, heads: 2, image_size: 16, patch_size: 8, pos_embed: 'sincos', pool: 'cls' });
    expect(m.backbone.config).to.deep.equal(JSON.parse(JSON.stringify(run.backbone.config)));
    expect(m.preprocessing).to.deep.include({
      image_size: 16,
      channels: 3,
      layout: 'NHWC',
      channel_order: 'RGB',
      value_range: [0, 1],
      mean: [0.588, 0.459, 0.402],
      std: [0.228, 0.202, 0.19],
    });
    expect(m.source).to.deep.include({
      recipe: 'keep-model',
      cell: 'default',
      budget: '50%',
      labeled_count: 28,
      unlabeled_count: 28,
      test_accuracy: run.metrics.accuracy,
      test_count: 21,
    });
    expect(m.source.dataset).to.deep.equal({ name: 'synthetic-faces', display: run.metrics.dataset.display, stand_in: null });
    // The fixed sin-cos position embedding is rebuilt from the configuration, not stored.
    expect(m.weights.parameters).to.equal(run.backbone.parameterCount(7).trainable);
    expect(fs.statSync(path.join(run.dir, WEIGHTS_FILE)).size).to.equal(m.weights.bytes);
    expect(m.weights.bytes).to.be.below(4 * m.weights.parameters + 4096);
  });

  it('keeps the weight EMA where that is evaluated, the trained weights where it is not', async () => {
    // With decay 1 the weight EMA never leaves the initial weights, so it is told apart from the trained ones.
    const frozen = ['pipeline.supervised.ema_decay=1'];
    const withEma = await runKeeping(frozen);
    const initial = withEma.backbone.build(7, deriveSeed(withEma.config.seed, 'model'));
    try {
      expect(maxAbsDiff(logitsOf(initial, withEma.data.test), withEma.inRun)).to.equal(0);
      expect(withEma.keptTrainable).to.equal(false);
      const raw = await runKeeping([...frozen, 'evaluation.use_ema=false']);
      expect(raw.keptTrainable).to.equal(true);
      expect(maxAbsDiff(logitsOf(initial, raw.data.test), raw.inRun)).to.be.above(1e-3);
      const loaded = await loadModelBundle(raw.dir);
      expect(maxAbsDiff(logitsOf(loaded.model, raw.data.test), raw.inRun)).to.equal(0);
      loaded.model.dispose();
    } finally {
      initial.dispose();
    }
  });

  describe('refusing what it cannot use', () => {
    let good: string;
    let weights: Buffer;
    let manifest: any;

    before(async () => {
      const registry = await createRegistry();
      const factory = registry.create(
        'backbone',
        { use: 'vit', preset: 'tiny', dim: 8, depth: 1, heads: 2, image_size: 8, patch_size: 4 },
        { seed: 1, scale: 'paper', recipeDir: '.' },
      );
      const model = factory.build(3, 1);
      good = path.join(tempDir(), 'model');
      await saveModelBundle(good, model, origin(factory, ['a', 'b', 'c']));
      model.dispose();
      weights = fs.readFileSync(path.join(good, WEIGHTS_FILE));
      manifest = JSON.parse(fs.readFileSync(path.join(good, MANIFEST_FILE), 'utf8'));
    });

    /** A copy of the good bundle with its manifest or weights changed. */
    function variant(change: { manifest?: (m: any) => unknown; weights?: (w: Buffer) => Buffer; text?: string }): string {
      const dir = path.join(tempDir(), 'model');
      fs.mkdirSync(dir);
      const m = structuredClone(manifest);
      fs.writeFileSync(path.join(dir, MANIFEST_FILE), change.text ?? JSON.stringify(change.manifest ? (change.manifest(m) ?? m) : m));
      fs.writeFileSync(path.join(dir, WEIGHTS_FILE), change.weights ? change.weights(Buffer.from(weights)) : weights);
      return dir;
    }

    async function refusal(dir: string): Promise<string> {
      const before = tf.memory().numTensors;
      try {
        const loaded = await loadModelBundle(dir);
        loaded.model.dispose();
      } catch (err) {
        expect(err).to.be.instanceOf(ModelBundleError);
        const message = (err as Error).message;
        expect(message, 'one line').to.not.include('\n');
        expect(tf.memory().numTensors, 'nothing left allocated').to.equal(before);
        return message;
      }
      throw new Error(`${dir} was loaded`);
    }

    it('loads the untouched bundle', async () => {
      const loaded = await loadModelBundle(good);
      expect(loaded.model.numClasses).to.equal(3);
      loaded.model.dispose();
    });

    it('refuses another format version, saying which versions are involved', async () => {
      const other = MODEL_FORMAT_VERSION + 1;
      const msg = await refusal(variant({ manifest: (m) => ({ ...m, format_version: other, ssfer_version: '9.0.0' }) }));
      expect(msg).to.include(
        `model bundle format version ${other} (written by ssfer 9.0.0); this ssfer (${pkg.version}) reads version ${MODEL_FORMAT_VERSION} only`,
      );
    });

    it('refuses a damaged manifest', async () => {
      expect(await refusal(variant({ text: '{"format": "ssfer-model", "format_version": 1,' }))).to.match(/model\.json: damaged model bundle \(not JSON/);
      expect(await refusal(variant({ manifest: (m) => void delete m.classes }))).to.match(/damaged model bundle \(.*must have required property 'classes'/);
      expect(await refusal(variant({ text: '{"format": "something-else"}' }))).to.match(/not an ssfer model bundle/);
    });

    it('refuses damaged, truncated or missing weights', async () => {
      const flipped = await refusal(variant({ weights: (w) => ((w[w.length - 3] ^= 0x40), w) }));
      expect(flipped).to.match(/model\.weights: damaged model bundle \(its sha256 differs from the manifest’s\); run the cell again/);
      expect(await refusal(variant({ weights: (w) => w.subarray(0, w.length - 8) }))).to.match(/damaged model bundle \(\d+ bytes, the manifest says \d+\)/);
      const missing = variant({});
      fs.rmSync(path.join(missing, WEIGHTS_FILE));
      expect(await refusal(missing)).to.match(/the weights file is missing/);
    });

    it('refuses weights that do not fit the backbone the manifest describes', async () => {
      // A consistent file (size and checksum match) of the wrong model: 4 classes instead of 3.
      const registry = await createRegistry();
      const factory = registry.create(
        'backbone',
        { use: 'vit', preset: 'tiny', dim: 8, depth: 1, heads: 2, image_size: 8, patch_size: 4 },
        { seed: 1, scale: 'paper', recipeDir: '.' },
      );
      const other = factory.build(4, 1);
      const dir = path.join(tempDir(), 'model');
      const written = await saveModelBundle(dir, other, origin(factory, ['a', 'b', 'c', 'd']));
      other.dispose();
      const m = { ...manifest, weights: written.weights };
      fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(m));
      expect(await refusal(dir)).to.match(
        /the weights do not fit the vit backbone the manifest describes \(.*'head\.weight' has shape \[8, 4\] in the record but \[8, 3\] in the model/,
      );
    });

    it('refuses a configuration this ssfer resolves differently', async () => {
      expect(await refusal(variant({ manifest: (m) => void (m.backbone.config.mlpDim = 99) }))).to.match(
        /resolves the backbone options to another configuration/,
      );
    });
  });

  it('saves and loads a backbone from a plugin file (not only the ViT)', async () => {
    const registry = await createRegistry([linearPlugin]);
    const factory = registry.create('backbone', { use: 'linear-probe', image_size: 8 }, { seed: 3, scale: 'paper', recipeDir: '.' });
    const model = factory.build(2, 3);
    const dir = path.join(tempDir(), 'model');
    await saveModelBundle(dir, model, origin(factory, ['x', 'y']));
    const images = { size: 2, images: Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => (i % 17) / 17) } as Split;
    try {
      const loaded = await loadModelBundle(dir, { pluginFiles: [linearPlugin] });
      expect(maxAbsDiff(logitsOf(loaded.model, images), logitsOf(model, images))).to.equal(0);
      loaded.model.dispose();
      const err = await loadModelBundle(dir).catch((e: Error) => e);
      expect((err as Error).message).to.match(
        /backbone plugin 'linear-probe' is not registered \(known: [^)]*\bvit\b[^)]*\); load the file that defines it with --plugin FILE/,
      );
    } finally {
      model.dispose();
    }
  });

  it('replaces a bundle as a whole: no temporary folder is left, and a failed save keeps the old bundle', async () => {
    const registry = await createRegistry();
    const factory = registry.create(
      'backbone',
      { use: 'vit', preset: 'tiny', dim: 8, depth: 1, heads: 2, image_size: 8, patch_size: 4 },
      { seed: 1, scale: 'paper', recipeDir: '.' },
    );
    const parent = tempDir();
    const dir = path.join(parent, 'model');
    const first = factory.build(3, 1);
    const second = factory.build(3, 2);
    try {
      const a = await saveModelBundle(dir, first, origin(factory, ['a', 'b', 'c']));
      const b = await saveModelBundle(dir, second, origin(factory, ['a', 'b', 'c']));
      expect(b.weights.sha256).to.not.equal(a.weights.sha256);
      expect(fs.readdirSync(parent)).to.deep.equal(['model']);
      // JSON cannot hold a BigInt: the save fails after the weights were written.
      const broken = { ...factory, config: { ...factory.config, bad: 1n } } as BackboneFactory;
      const err = await saveModelBundle(dir, first, origin(broken, ['a', 'b', 'c'])).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect(fs.readdirSync(parent)).to.deep.equal(['model']);
      expect(JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')).weights.sha256).to.equal(b.weights.sha256);
    } finally {
      first.dispose();
      second.dispose();
    }
  });

  it('finds the bundle of a cell folder, and says what any other folder is', () => {
    const cell = path.join(tempDir(), 'cells', 'a=1');
    fs.mkdirSync(path.join(cell, 'model'), { recursive: true });
    fs.writeFileSync(path.join(cell, 'model', MANIFEST_FILE), '{}');
    expect(findModelDir(cell)).to.equal(path.join(cell, 'model'));
    expect(findModelDir(path.join(cell, 'model'))).to.equal(path.join(cell, 'model'));

    const run = path.dirname(path.dirname(cell));
    fs.writeFileSync(path.join(run, 'run.json'), '{}');
    expect(() => findModelDir(run)).to.throw(ModelBundleError, /a run folder, not one cell; name one of its cells' seed folders: .*cells[/\\]a=1/);

    // A cell folder holds a folder per seed: with one seed, its model; with several, the user names one.
    const seeded = path.join(run, 'cells', 'b=2');
    fs.mkdirSync(path.join(seeded, 'seed-0', 'model'), { recursive: true });
    fs.writeFileSync(path.join(seeded, 'seed-0', 'model', MANIFEST_FILE), '{}');
    expect(findModelDir(seeded)).to.equal(path.join(seeded, 'seed-0', 'model'));
    expect(findModelDir(path.join(seeded, 'seed-0'))).to.equal(path.join(seeded, 'seed-0', 'model'));
    fs.mkdirSync(path.join(seeded, 'seed-1', 'model'), { recursive: true });
    fs.writeFileSync(path.join(seeded, 'seed-1', 'model', MANIFEST_FILE), '{}');
    expect(() => findModelDir(seeded)).to.throw(
      ModelBundleError,
      /a cell of 2 seeds, each with its own model; name one seed's folder: .*b=2[/\\]seed-0, .*b=2[/\\]seed-1$/,
    );
    expect(() => findModelDir(run)).to.throw(/name one of its cells' seed folders: .*cells[/\\]a=1, .*b=2[/\\]seed-0, .*b=2[/\\]seed-1$/);
    const unfinishedSeed = path.join(run, 'cells', 'c=3');
    fs.mkdirSync(path.join(unfinishedSeed, 'seed-0', 'checkpoints'), { recursive: true });
    expect(() => findModelDir(unfinishedSeed)).to.throw(/seed-0: this cell has not finished/);

    const old = tempDir();
    fs.writeFileSync(path.join(old, 'metrics.json'), '{}');
    expect(() => findModelDir(old)).to.throw(/this cell has no saved model .*run the cell again/);
    const failed = tempDir();
    fs.writeFileSync(path.join(failed, 'error.json'), '{}');
    expect(() => findModelDir(failed)).to.throw(/this cell failed, so it has no model \(see its error\.json\)/);
    const unfinished = tempDir();
    fs.mkdirSync(path.join(unfinished, 'checkpoints'));
    expect(() => findModelDir(unfinished)).to.throw(/has not finished.*--resume/);
    expect(() => findModelDir(path.join(old, 'nowhere'))).to.throw(/no such file or folder/);
    expect(() => findModelDir(path.join(old, 'metrics.json'))).to.throw(/not a folder/);
    expect(() => findModelDir(tempDir())).to.throw(/no saved model here/);
  });
});

function origin(factory: BackboneFactory, classes: string[]): ModelOrigin {
  return {
    backbone: {
      use: factory.name,
      ...(factory.name === 'vit' ? { preset: 'tiny', dim: 8, depth: 1, heads: 2, image_size: 8, patch_size: 4 } : { image_size: factory.imageSize }),
    },
    factory,
    classes,
    source: {
      recipe: 'test',
      cell: 'c',
      dataset: { name: 'synthetic-faces', display: 'Synthetic faces', stand_in: null },
      budget: '50%',
      labeled_count: 1,
      unlabeled_count: 1,
      test_accuracy: 0.5,
      test_count: 2,
      stages: {},
    },
  };
}
