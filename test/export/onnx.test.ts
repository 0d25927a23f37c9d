import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import pkg from '../../package.json' with { type: 'json' };
import type { Backbone, BackboneFactory } from '../../src/contracts/backbone.ts';
import { createRegistry, type PluginRegistry } from '../../src/core/registry.ts';
import { decodeSquare } from '../../src/data/decode.ts';
import { exportModel, ExportError } from '../../src/export/export.ts';
import { loadModelBundle, MODEL_FORMAT_VERSION, saveModelBundle, type ModelOrigin } from '../../src/model/bundle.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';
import { onnxCheck, venvPython } from './python.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const CLASSES = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger'];
const TOLERANCE = 1e-4;

function ssfer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function ortLogits(file: string, images: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    expect(session.inputNames).to.deep.equal(['images']);
    expect(session.outputNames).to.deep.equal(['logits']);
    const out = await session.run({ images: new ort.Tensor('float32', images, shape) });
    expect(out.logits!.dims).to.deep.equal([shape[0], CLASSES.length]);
    return out.logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function tfLogits(model: Backbone, images: Float32Array, count: number): Float32Array {
  const s = model.imageSize;
  return tf.tidy(() => model.logits(tf.tensor4d(images, [count, s, s, model.channels])).dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Every weight moved off its initial value, so zero biases and unit norms hide nothing. */
function perturb(model: Backbone, seed: number): void {
  const record = tf.tidy(() => {
    const out: Record<string, tf.Tensor> = {};
    let i = 0;
    for (const [name, v] of model.namedVariables()) out[name] = tf.add(v, tf.randomNormal(v.shape, 0, 0.2, 'float32', seed + i++));
    return out;
  });
  model.loadState(record);
  tf.dispose(Object.values(record));
}

/** Test images: synthetic faces as the datasets draw them, and two of uniform noise. */
async function testImages(registry: PluginRegistry, size: number): Promise<{ images: Float32Array; count: number }> {
  const data = await registry
    .create('dataset', { use: 'synthetic-faces', classes: 7 }, { seed: 4, scale: 'paper', recipeDir: '.' })
    .load({ imageSize: size, trainSize: 7, testSize: 6 });
  const per = size * size * 3;
  const images = new Float32Array(8 * per);
  images.set(data.test.images.subarray(0, 6 * per));
  const noise = tf.tidy(() => tf.randomUniform([2 * per], 0, 1, 'float32', 9).dataSync() as Float32Array);
  images.set(noise, 6 * per);
  return { images, count: 8 };
}

function origin(factory: BackboneFactory, slot: Record<string, unknown>): ModelOrigin {
  return {
    backbone: { use: 'vit', ...slot },
    factory,
    classes: CLASSES,
    source: {
      recipe: 'export-test',
      cell: 'variant',
      dataset: { name: 'synthetic-faces', display: 'Synthetic faces', stand_in: null },
      budget: '10%',
      labeled_count: 10,
      unlabeled_count: 90,
      test_accuracy: 0.25,
      test_count: 8,
      stages: {},
    },
  };
}

const BASE = { preset: 'tiny', dim: 32, depth: 2, heads: 4, image_size: 32, patch_size: 8 };
const VARIANTS: { name: string; options: Record<string, unknown> }[] = [
  { name: 'class token pooled, sin-cos positions', options: { pool: 'cls', pos_embed: 'sincos' } },
  { name: 'mean-pooled, learned positions', options: { pool: 'mean', pos_embed: 'learned' } },
  { name: 'class token pooled, learned positions', options: { pool: 'cls', pos_embed: 'learned' } },
  { name: 'mean-pooled without a class token, sin-cos positions', options: { pool: 'mean', class_token: false } },
  {
    name: 'MLP head, tanh GELU, no qkv bias, its own sizes and normalisation',
    options: {
      image_size: 24,
      patch_size: 6,
      dim: 24,
      depth: 3,
      heads: 3,
      mlp_ratio: 2.5,
      gelu: 'tanh',
      qkv_bias: false,
      layer_norm_eps: 1e-5,
      head: { hidden: 20 },
      input_mean: [0.5, 0.4, 0.3],
      input_std: [0.2, 0.3, 0.25],
    },
  },
];

interface Exported {
  name: string;
  file: string;
  size: number;
  images: Float32Array;
  count: number;
  expected: Float32Array;
}

describe('ssfer export: the ViT as ONNX', function () {
  this.timeout(300_000);
  const exported: Exported[] = [];
  let registry: PluginRegistry;

  before(async () => {
    await tf.setBackend('cpu');
    registry = await createRegistry();
  });

  for (const [i, variant] of VARIANTS.entries()) {
    it(`${variant.name}: onnxruntime-node gives the tfjs logits within ${TOLERANCE}`, async () => {
      const slot = { ...BASE, ...variant.options };
      const factory = registry.create('backbone', { use: 'vit', ...slot }, { seed: 1, scale: 'paper', recipeDir: '.' });
      const model = factory.build(CLASSES.length, 100 + i);
      const dir = path.join(tempDir(), 'model');
      try {
        perturb(model, 1000 * (i + 1));
        await saveModelBundle(dir, model, origin(factory, slot));
      } finally {
        model.dispose();
      }
      const before = tf.memory().numTensors;
      const result = await exportModel(dir, { out: path.join(dir, 'vit.onnx') });
      expect(tf.memory().numTensors, 'export leaves no tensor behind').to.equal(before);
      expect(result.graph.opset).to.equal(17);

      // The reference is the model as ssfer loads it back from the bundle.
      const loaded = await loadModelBundle(dir);
      const size = factory.imageSize;
      const { images, count } = await testImages(registry, size);
      const expected = tfLogits(loaded.model, images, count);
      loaded.model.dispose();
      // Logits that differ between images and classes, so agreeing on them means something.
      expect(Math.max(...expected) - Math.min(...expected)).to.be.above(1);

      const got = await ortLogits(result.file, images, [count, size, size, 3]);
      expect(maxAbsDiff(got, expected)).to.be.below(TOLERANCE);
      // A free batch size: one image alone gives its row of the batch.
      const one = await ortLogits(result.file, images.subarray(0, size * size * 3), [1, size, size, 3]);
      expect(maxAbsDiff(one, expected.subarray(0, CLASSES.length))).to.be.below(TOLERANCE);
      exported.push({ name: variant.name, file: result.file, size, images, count, expected });
    });
  }

  describe('a trained cell, from `ssfer run` to `ssfer export`', () => {
    let run: string;
    let cell: string;

    before(() => {
      const out = tempDir();
      const r = ssfer(['run', path.join(fixtures, 'recipes', 'keep-model.yaml'), '--backend', 'cpu', '--out', out]);
      expect(r.status, r.stderr).to.equal(0);
      const base = path.join(out, 'keep-model');
      run = path.join(base, fs.readdirSync(base).sort().pop()!);
      cell = path.join(run, 'cells', 'default', 'seed-0');
    });

    it('keeps the model in the cell folder and deletes the checkpoints', () => {
      expect(fs.readdirSync(path.join(cell, 'model')).sort()).to.deep.equal(['model.json', 'model.weights']);
      expect(fs.existsSync(path.join(cell, 'checkpoints'))).to.equal(false);
    });

    it('exports the cell to <cell>/model/model.onnx, which gives the kept model’s logits', async () => {
      const r = ssfer(['export', cell]);
      expect(r.status, r.stderr).to.equal(0);
      const file = path.join(cell, 'model', 'model.onnx');
      expect(r.stdout).to.include(`wrote ${file}`);
      expect(r.stdout).to.match(/input {2}images \[batch, 16, 16, 3\] RGB in \[0, 1\], normalised in the graph/);
      expect(r.stdout).to.include(`output logits [batch, 7]: ${CLASSES.join(', ')}`);
      expect(r.stderr).to.equal('');

      const loaded = await loadModelBundle(path.join(cell, 'model'));
      const { images, count } = await testImages(registry, 16);
      const expected = tfLogits(loaded.model, images, count);
      loaded.model.dispose();
      expect(maxAbsDiff(await ortLogits(file, images, [count, 16, 16, 3]), expected)).to.be.below(TOLERANCE);
      exported.push({ name: 'trained cell', file, size: 16, images, count, expected });
    });

    it('the README’s Python example reads a photo and gives the logits ssfer gives it', async () => {
      const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
      const example = /## Using a trained model[\s\S]*?```python\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(example, 'a python example in the README').to.be.a('string');
      // A face at the model's size, so no resampling stands between the two readings.
      const { images } = await testImages(registry, 16);
      const photo = path.join(tempDir(), 'face.png');
      await sharp(Buffer.from(images.subarray(0, 16 * 16 * 3).map((v) => Math.round(v * 255))), { raw: { width: 16, height: 16, channels: 3 } })
        .png()
        .toFile(photo);
      const bytes = new Uint8Array(16 * 16 * 3);
      await decodeSquare({ file: photo }, 16, bytes);
      const loaded = await loadModelBundle(path.join(cell, 'model'));
      const expected = tfLogits(
        loaded.model,
        Float32Array.from(bytes, (b) => b / 255),
        1,
      );
      loaded.model.dispose();

      const script =
        example!.replace('cells/<id>/seed-0/model/model.onnx', path.join(cell, 'model', 'model.onnx')).replace('face.jpg', photo) +
        'print(json.dumps(logits.tolist()))\n';
      const r = spawnSync(venvPython(), ['-c', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const [label, logits] = r.stdout.trim().split('\n');
      expect(maxAbsDiff(JSON.parse(logits!), expected)).to.be.below(TOLERANCE);
      expect(label).to.equal(CLASSES[expected.indexOf(Math.max(...expected))]);
    });

    it('--out writes elsewhere, from the model folder too', () => {
      const out = path.join(tempDir(), 'faces.onnx');
      const r = ssfer(['export', path.join(cell, 'model'), '--format', 'onnx', '--out', out]);
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readFileSync(out).equals(fs.readFileSync(path.join(cell, 'model', 'model.onnx')))).to.equal(true);
    });

    it('refuses what it cannot export with one message, and writes nothing', async () => {
      const free = tempDir();
      const refused = async (given: string, opts: { out?: string; format?: string }, pattern: RegExp) => {
        const err = await exportModel(given, opts).catch((e: Error) => e);
        expect(err, `${given} ${JSON.stringify(opts)}`).to.be.instanceOf(Error);
        expect((err as Error).message).to.not.include('\n');
        expect((err as Error).message).to.match(pattern);
      };
      await refused(path.join(free, 'nothing-here'), {}, /no such file or folder/);
      await refused(run, {}, /a run folder, not one cell; name one of its cells' seed folders: .*cells[/\\]default[/\\]seed-0/);
      const withoutModel = path.join(free, 'old-cell');
      fs.mkdirSync(withoutModel);
      fs.copyFileSync(path.join(cell, 'metrics.json'), path.join(withoutModel, 'metrics.json'));
      await refused(withoutModel, {}, /this cell has no saved model/);
      await refused(cell, { out: free }, /--out .* is a folder; name the file to write/);
      await refused(cell, { out: path.join(free, 'missing', 'm.onnx') }, /folder .*missing does not exist; create it or choose another --out/);
      await refused(cell, { out: path.join(free, 'model.pb') }, /name a file ending in \.onnx/);
      await refused(cell, { format: 'tflite' }, /--format tflite: not a known format; formats: onnx/);
      expect(fs.readdirSync(free)).to.deep.equal(['old-cell']);

      const damaged = path.join(free, 'damaged');
      fs.cpSync(path.join(cell, 'model'), damaged, { recursive: true });
      fs.rmSync(path.join(damaged, 'model.onnx'));
      const weights = path.join(damaged, 'model.weights');
      fs.truncateSync(weights, fs.statSync(weights).size - 4);
      await refused(damaged, {}, /damaged model bundle/);
      expect(fs.readdirSync(damaged).sort()).to.deep.equal(['model.json', 'model.weights']);
    });

    it('answers bad input on the command line with one line and exit status 2', () => {
      const free = tempDir();
      const refused = (args: string[], pattern: RegExp) => {
        const r = ssfer(['export', ...args]);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
        expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
        expect(r.stderr).to.match(/^ssfer export: /);
        expect(r.stderr).to.match(pattern);
        expect(r.stdout).to.equal('');
      };
      refused([path.join(free, 'nothing-here')], /no such file or folder/);
      refused([cell, '--out', free], /is a folder/);
      refused([cell, '--format', 'tflite'], /not a known format/);
      refused([], /name one cell folder/);
      expect(fs.readdirSync(free)).to.deep.equal([]);
    });

    it('says which backbones export when the model’s does not', async () => {
      const plugin = path.join(fixtures, 'plugins', 'linear-backbone.ts');
      const withPlugin = await createRegistry([plugin]);
      const factory = withPlugin.create('backbone', { use: 'linear-probe', image_size: 8 }, { seed: 1, scale: 'paper', recipeDir: '.' });
      const model = factory.build(2, 1);
      const dir = path.join(tempDir(), 'model');
      await saveModelBundle(dir, model, { ...origin(factory, { image_size: 8 }), backbone: { use: 'linear-probe', image_size: 8 }, classes: ['a', 'b'] });
      model.dispose();
      const err = await exportModel(dir, { pluginFiles: [plugin] }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(ExportError);
      expect((err as Error).message).to.match(/the model's backbone 'linear-probe' does not export to ONNX; backbones that export: vit$/);
      const r = ssfer(['export', dir, '--plugin', plugin]);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/backbones that export: vit/);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['model.json', 'model.weights']);
    });
  });

  describe('in Python', () => {
    it('onnx.checker accepts every exported model, onnxruntime and the onnx reference evaluator give the tfjs logits, the metadata describes the input', function () {
      expect(exported.map((e) => e.name)).to.deep.equal([...VARIANTS.map((v) => v.name), 'trained cell']);
      const dir = tempDir();
      const jobs = exported.map((e, i) => {
        const input = path.join(dir, `input-${i}.f32`);
        fs.writeFileSync(input, Buffer.from(e.images.buffer, e.images.byteOffset, e.images.byteLength));
        return { model: e.file, input, shape: [e.count, e.size, e.size, 3] };
      });
      fs.writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(jobs));
      const results = onnxCheck('run', path.join(dir, 'jobs.json'));
      for (const [i, r] of results.entries()) {
        const e = exported[i]!;
        expect(maxAbsDiff(r.onnxruntime, e.expected), `${e.name}: onnxruntime`).to.be.below(TOLERANCE);
        expect(maxAbsDiff(r.reference, e.expected), `${e.name}: reference evaluator`).to.be.below(TOLERANCE);
        expect(r.inputs).to.deep.equal([['images', ['batch', e.size, e.size, 3], 'tensor(float)']]);
        expect(r.outputs).to.deep.equal([['logits', ['batch', 7], 'tensor(float)']]);
        expect(r.producer).to.equal('ssfer');
        const m = r.metadata;
        expect(JSON.parse(m.classes)).to.deep.equal(CLASSES);
        expect(m).to.include({
          input: 'images',
          output: 'logits',
          image_size: String(e.size),
          layout: 'NHWC',
          channel_order: 'RGB',
          ssfer_version: pkg.version,
          model_format_version: String(MODEL_FORMAT_VERSION),
        });
        expect(JSON.parse(m.value_range)).to.deep.equal([0, 1]);
        const pre = JSON.parse(m.preprocessing);
        expect(pre).to.deep.include({ image_size: e.size, layout: 'NHWC', channel_order: 'RGB', value_range: [0, 1], normalised_in_graph: true });
        expect(JSON.parse(m.mean)).to.deep.equal(pre.mean);
        expect(JSON.parse(m.backbone).plugin).to.equal('vit');
      }
      const custom = JSON.parse(results[VARIANTS.length - 1].metadata.preprocessing);
      expect(custom).to.deep.include({ mean: [0.5, 0.4, 0.3], std: [0.2, 0.3, 0.25] });
      expect(JSON.parse(results.at(-1).metadata.source)).to.deep.include({ recipe: 'keep-model', cell: 'default', budget: '50%' });
      // Where the trained cell's faces sat, for a user who crops photos alike.
      const faceBox = JSON.parse(results.at(-1).metadata.face_box) as number[];
      expect(faceBox).to.have.length(4);
      expect(JSON.parse(results.at(-1).metadata.preprocessing).face_box).to.deep.equal(faceBox);
    });
  });
});
