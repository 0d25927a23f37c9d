import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import linearPlugin from '../../../plugins/backbone/linear.ts';
import mobilenetPlugin from '../../../plugins/backbone/mobilenet-v3.ts';
import resnetPlugin from '../../../plugins/backbone/resnet.ts';
import smallCnnPlugin from '../../../plugins/backbone/small-cnn.ts';
import vggPlugin from '../../../plugins/backbone/vgg.ts';
import type { ConvNet } from '../../../plugins/backbone/cnn/model.ts';
import { useConvImplementation } from '../../../plugins/backbone/cnn/layers.ts';
import type { Backbone, BackboneFactory } from '../../../src/contracts/backbone.ts';
import { isTokenBackbone } from '../../../src/contracts/backbone.ts';
import type { PluginContext, PluginDefinition } from '../../../src/core/plugin.ts';
import { Ema } from '../../../src/train/ema.ts';
import { crossEntropy } from '../../../src/train/losses.ts';
import { AdamW } from '../../../src/train/optimizer.ts';
import { fileCheckpointStore, restoreTraining, saveTraining } from '../../../src/train/resume.ts';
import { backendAvailable } from '../../../src/engine/backend.ts';
import { evaluate } from '../../../src/pipeline/evaluate.ts';
import { resolveRecipe } from '../../../src/recipe/recipe.ts';
import { fixtures, tempDir } from '../../helpers.ts';
import { onNative, requireNative } from '../../native/helpers.ts';
import { layerDecayScale } from '../../../src/train/fine-tuning-optimizer.ts';

const ctx: PluginContext = {
  seed: 7,
  scale: 'smoke',
  recipeDir: '.',
  resolve() {
    throw new Error('not used');
  },
};

const plugins: Record<string, PluginDefinition<any>> = {
  resnet: resnetPlugin,
  vgg: vggPlugin,
  'mobilenet-v3': mobilenetPlugin,
  'small-cnn': smallCnnPlugin,
  linear: linearPlugin,
};

/** A plugin's factory with its schema's defaults filled in, as the registry would create it. */
function factory(name: string, options: Record<string, unknown> = {}): BackboneFactory<ConvNet<unknown>> {
  const def = plugins[name]!;
  const props = def.options.properties as Record<string, { default?: unknown }>;
  const full = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, structuredClone(v.default)]));
  return def.create({ ...full, ...options }, ctx) as BackboneFactory<ConvNet<unknown>>;
}

function trainedSize(m: Backbone): number {
  return m.trainableVariables().reduce((n, v) => n + v.size, 0);
}

function bufferSize(m: Backbone): number {
  const trained = new Set(m.trainableVariables());
  return [...m.namedVariables().values()].filter((v) => !trained.has(v)).reduce((n, v) => n + v.size, 0);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** The weight formula of test/fixtures/torchvision/make.py, in this project's layouts. */
function nameKey(name: string): number {
  let k = 0;
  for (let i = 0; i < name.length; i++) k += name.charCodeAt(i) * (i + 1);
  return k % 1009;
}

/** Uniform in [-1, 1) from a murmur3-style mix of (index, key), exact in 32-bit integers. */
function hashed(i: number, base: number): number {
  let h = (Math.imul(i, 2654435761) + base) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 2147483648 - 1;
}

function formula(n: number, key: number, scale: (u: number) => number): Float32Array {
  const out = new Float32Array(n);
  const base = Math.imul(key, 40503) >>> 0;
  for (let i = 0; i < n; i++) out[i] = scale(hashed(i, base));
  return out;
}

function formulaValues(name: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const depthwise = shape.length === 4 && shape[3] === 1;
  const fanIn = depthwise ? shape[0]! * shape[1]! : shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const he = Math.sqrt(6 / fanIn);
  const scale = name.endsWith('running_var')
    ? (u: number) => 1 + 0.25 * u
    : name.endsWith('running_mean')
      ? (u: number) => 0.1 * u
      : name.endsWith('bias')
        ? (u: number) => 0.05 * u
        : shape.length === 1
          ? (u: number) => 1 + 0.2 * u
          : (u: number) => he * u;
  return formula(n, nameKey(name), scale);
}

describe('convolutional backbones', function () {
  this.timeout(600_000);

  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('parameter counts', () => {
    // torchvision 0.14's models, counted with sum(p.numel() for p in model.parameters()) at
    // num_classes 1000 (the figures of torchvision's model documentation) and 7; buffers are the
    // BatchNorm running means and variances (num_batches_tracked left out).
    const published = [
      { label: 'ResNet-18', name: 'resnet', options: { depth: 18 }, at1000: 11_689_512, at7: 11_180_103, buffers: 9_600 },
      { label: 'ResNet-50', name: 'resnet', options: { depth: 50 }, at1000: 25_557_032, at7: 23_522_375, buffers: 53_120 },
      // Built at 7 classes only (133 M weights take long to draw); the count at 1000 is the same code's.
      { label: 'VGG13-BN', name: 'vgg', options: { depth: 13 }, at1000: 133_053_736, at7: 128_985_415, buffers: 5_888, build: [7] },
      { label: 'MobileNetV3-Large', name: 'mobilenet-v3', options: { size: 'large' }, at1000: 5_483_032, at7: 4_210_999, buffers: 24_400 },
      { label: 'MobileNetV3-Small', name: 'mobilenet-v3', options: { size: 'small' }, at1000: 2_542_856, at7: 1_525_031, buffers: 12_112 },
    ];
    for (const p of published) {
      it(`${p.label} has torchvision's ${(p.at1000 / 1e6).toFixed(2)} M weights at 1000 classes and ${(p.at7 / 1e6).toFixed(2)} M at 7`, () => {
        const f = factory(p.name, p.options);
        for (const [classes, expected] of [
          [1000, p.at1000],
          [7, p.at7],
        ] as const) {
          expect(f.parameterCount(classes)).to.deep.equal({ total: expected, trainable: expected });
          if (p.build && !p.build.includes(classes)) continue;
          const m = f.build(classes, 0);
          try {
            expect(trainedSize(m), `${classes} classes`).to.equal(expected);
            expect(bufferSize(m)).to.equal(p.buffers);
          } finally {
            m.dispose();
          }
        }
      });
    }

    it('the VGG13 of Table 6 (128.9 M at 7 classes) is torchvision’s vgg13 without BatchNorm', () => {
      // 128,979,527 weights; with BatchNorm 128,985,415. The paper prints 128.9.
      expect(factory('vgg', { depth: 13, batch_norm: false }).parameterCount(7).trainable).to.equal(128_979_527);
      expect(factory('vgg', { depth: 11, batch_norm: false }).parameterCount(7).trainable).to.equal(128_795_015); // Table 6: 128.8
    });

    it('VGG’s smoke-scale classifier (pool_size 1, hidden 512) keeps the convolutions and shrinks the 7×7 pool and 4096-wide layers', () => {
      // VGG13-BN at 7 classes less torchvision's classifier (25088·4096 + 4096 + 4096·4096 + 4096 + 4096·7 + 7): its convolutions.
      const convolutions = 128_985_415 - (25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 7 + 7);
      const f = factory('vgg', { depth: 13, image_size: 32, pool_size: 1, hidden: 512 });
      const expected = convolutions + 512 * 512 + 512 + 512 * 512 + 512 + 512 * 7 + 7;
      expect(f.parameterCount(7).trainable).to.equal(expected);
      const m = f.build(7, 0);
      expect(trainedSize(m)).to.equal(expected);
      expect(m.featureDim).to.equal(512);
      m.dispose();
    });

    it('the small CNN and the linear probe count what they allocate', () => {
      const cnn = factory('small-cnn');
      const m = cnn.build(7, 0);
      // 3·32·9 + 32·32·9 + 32·64·9 + 64·64·9 + 64·128·9 + 128·128·9 convolution weights, 2 per BatchNorm channel, 128·7 + 7 head.
      const expected = 286_560 + 2 * (32 + 32 + 64 + 64 + 128 + 128) + 128 * 7 + 7;
      expect(trainedSize(m)).to.equal(expected);
      expect(cnn.parameterCount(7).trainable).to.equal(expected);
      m.dispose();
      const lin = factory('linear', { image_size: 48 });
      const l = lin.build(7, 0);
      expect(trainedSize(l)).to.equal(48 * 48 * 3 * 7 + 7);
      expect(bufferSize(l)).to.equal(4 * 48 * 48 * 3); // the scaler's statistics, not trained
      l.dispose();
    });
  });

  describe('against torchvision', function () {
    // Reference logits from test/fixtures/torchvision/make.py (PyTorch 1.13, torchvision 0.14):
    // every weight and input is a formula of its index, so only the logits are stored.
    const reference = JSON.parse(fs.readFileSync(path.join(fixtures, 'torchvision', 'logits.json'), 'utf8'));
    const names: Record<string, string> = { resnet18: 'resnet', resnet50: 'resnet', vgg13_bn: 'vgg', mobilenet_v3_large: 'mobilenet-v3' };
    // The matrix-product path on the BLAS backend; tfjs's JS convolutions would take minutes here.
    onNative({ select: true });

    for (const [tvName, plugin] of Object.entries(names)) {
      it(`${tvName} gives torchvision's logits in eval and in training mode, and its running statistics`, () => {
        const r = reference.models[tvName];
        const f = factory(plugin, { ...r.options, image_size: reference.image_size, dropout: 0 });
        const m = f.build(reference.classes, 0);
        try {
          for (const [name, v] of m.namedVariables()) v.assign(tf.tensor(formulaValues(name, v.shape), v.shape));
          const size = reference.image_size;
          const n = reference.batch * size * size * 3;
          const x = tf.tensor4d(
            formula(n, 7, (u) => 0.5 + 0.5 * u),
            [reference.batch, size, size, 3],
          );
          const close = (ours: tf.Tensor, theirs: number[][], what: string) => {
            const scale = Math.max(...theirs.flat().map(Math.abs));
            const expected = tf.tensor2d(theirs);
            const diff = maxAbsDiff(ours, expected);
            tf.dispose([ours, expected]);
            expect(diff, `${what}: largest difference ${diff} for logits up to ${scale}`).to.be.below(2e-4 * scale + 1e-5);
          };
          close(
            tf.tidy(() => m.logits(x)),
            r.eval,
            'eval',
          );
          close(
            tf.tidy(() => m.logits(x, { training: true })),
            r.train,
            'train',
          );
          const stem = m.namedVariables();
          const rm = stem.get(`${r.stem_bn}.running_mean`)!.dataSync().slice(0, 4);
          const rv = stem.get(`${r.stem_bn}.running_var`)!.dataSync().slice(0, 4);
          r.running_mean.forEach((e: number, i: number) => expect(rm[i]).to.be.closeTo(e, 1e-5));
          r.running_var.forEach((e: number, i: number) => expect(rv[i]).to.be.closeTo(e, 1e-4));
          x.dispose();
        } finally {
          m.dispose();
        }
      });
    }
  });

  describe('BatchNorm state', () => {
    const tiny = () => factory('small-cnn', { image_size: 16, widths: [4, 8], dropout: 0 });
    const batch = () => tf.randomUniform([6, 16, 16, 3], 0, 1, 'float32', 11) as tf.Tensor4D;

    it('keeps the running statistics as named buffers that the optimizer leaves alone', () => {
      const m = tiny().build(3, 1);
      try {
        const names = [...m.namedVariables().keys()];
        expect(names).to.include.members(['blocks.0.0.bn.running_mean', 'blocks.0.0.bn.running_var', 'blocks.1.1.bn.running_var', 'head.weight']);
        const trained = new Set(m.trainableVariables().map((v) => v.name));
        for (const [name, v] of m.namedVariables()) {
          expect(trained.has(v.name), name).to.equal(!/running_/.test(name));
          expect(v.trainable, name).to.equal(!/running_/.test(name));
        }
        expect(m.headVariables().map((v) => v.shape)).to.deep.equal([[8, 3], [3]]);
        expect(m.noWeightDecay('blocks.0.0.bn.weight')).to.equal(true);
        expect(m.noWeightDecay('blocks.0.0.conv.weight')).to.equal(false);
        expect(isTokenBackbone(m)).to.equal(false);
        expect(() => layerDecayScale(m, 0.75, 'supervised')).to.throw('supervised: layer_decay 0.75 needs a backbone that numbers its layers');
      } finally {
        m.dispose();
      }
    });

    it('moves them in training mode only', () => {
      const m = tiny().build(3, 1);
      const x = batch();
      try {
        const rm = m.namedVariables().get('blocks.0.0.bn.running_mean')!;
        tf.tidy(() => {
          m.logits(x);
        });
        expect(Array.from(rm.dataSync())).to.deep.equal([0, 0, 0, 0]);
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          m.logits(x, { training: true });
        });
        expect(tf.memory().numTensors).to.equal(before);
        expect(Array.from(rm.dataSync()).some((v) => v !== 0)).to.equal(true);
        // Train mode depends on the batch, eval mode does not.
        const single = tf.tidy(() => m.logits(tf.slice(x, [0, 0, 0, 0], [2, 16, 16, 3]) as tf.Tensor4D).slice([0, 0], [1, 3]));
        const inBatch = tf.tidy(() => m.logits(x).slice([0, 0], [1, 3]));
        expect(maxAbsDiff(single, inBatch)).to.be.below(1e-5);
        tf.dispose([single, inBatch]);
      } finally {
        x.dispose();
        m.dispose();
      }
    });

    it('the EMA copy averages them and evaluates with its own', () => {
      const f = tiny();
      const student = f.build(3, 1);
      const copy = f.build(3, 1, { trainable: false });
      const x = batch();
      try {
        expect(copy.trainableVariables().length).to.equal(student.trainableVariables().length);
        const ema = new Ema(copy.namedVariables(), student.namedVariables(), 0.5);
        ema.copy();
        const opt = new AdamW(new Map([...student.namedVariables()].filter(([, v]) => v.trainable)), { weightDecay: 0 });
        const labels = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
        tf.tidy(() => opt.minimize(() => tf.mean(crossEntropy(student.logits(x, { training: true }), labels, 3, 0)) as tf.Scalar, 1e-2));
        opt.dispose();
        labels.dispose();
        const name = 'blocks.1.0.bn.running_var';
        const sv = student.namedVariables().get(name)!.dataSync()[0]!;
        expect(sv).to.not.equal(1);
        expect(copy.namedVariables().get(name)!.dataSync()[0]).to.equal(1);
        ema.update();
        expect(copy.namedVariables().get(name)!.dataSync()[0]).to.be.closeTo(0.5 * 1 + 0.5 * sv, 1e-6);
        // The copy's eval logits are those of a model holding its averaged weights and statistics.
        const state = copy.state();
        const fresh = f.build(3, 99);
        fresh.loadState(state);
        tf.dispose(Object.values(state));
        const a = tf.tidy(() => copy.logits(x));
        const b = tf.tidy(() => fresh.logits(x));
        const s = tf.tidy(() => student.logits(x));
        expect(maxAbsDiff(a, b)).to.equal(0);
        expect(maxAbsDiff(a, s)).to.be.above(1e-4);
        tf.dispose([a, b, s]);
        fresh.dispose();
      } finally {
        x.dispose();
        student.dispose();
        copy.dispose();
      }
    });

    it('a checkpoint carries them', async () => {
      const f = tiny();
      const m = f.build(3, 1);
      const x = batch();
      const file = path.join(tempDir(), 'cnn.ckpt');
      try {
        tf.tidy(() => {
          m.logits(x, { training: true });
        });
        const before = tf.tidy(() => m.logits(x));
        const store = fileCheckpointStore(file);
        await saveTraining(store, { weights: m.namedVariables() }, { epoch: 1, step: 3 });
        tf.tidy(() => {
          m.logits(x, { training: true });
        }); // moves the statistics again
        const moved = tf.tidy(() => m.logits(x));
        expect(maxAbsDiff(before, moved)).to.be.above(1e-6);
        const at = await restoreTraining(store, { weights: m.namedVariables() });
        expect(at).to.deep.include({ epoch: 1, step: 3 });
        const after = tf.tidy(() => m.logits(x));
        expect(maxAbsDiff(before, after)).to.equal(0);
        tf.dispose([before, moved, after]);
      } finally {
        x.dispose();
        m.dispose();
      }
    });
  });

  describe('the linear probe', () => {
    it('standardises every pixel by the running statistics of the training images', () => {
      const f = factory('linear', { image_size: 2, channels: 1, input_mean: [0], input_std: [1] });
      const m = f.build(2, 0);
      try {
        // Pixel 0 is 1 or 3 across the batch (mean 2, unbiased variance 2); the others constant.
        const x = tf.tensor4d([1, 5, 5, 5, 3, 5, 5, 5], [2, 2, 2, 1]);
        const train = tf.tidy(() => m.features(x, { training: true }).arraySync());
        expect(train[0]![0]).to.be.closeTo(-1, 1e-4); // (1 − 2)/√(1 + 1e-5)
        expect(train[1]![0]).to.be.closeTo(1, 1e-4);
        expect(train[0]![1]).to.equal(0);
        const rm = m.namedVariables().get('scaler.running_mean')!.dataSync();
        const rv = m.namedVariables().get('scaler.running_var')!.dataSync();
        expect(rm[0]).to.be.closeTo(0.2, 1e-6);
        expect(rv[0]).to.be.closeTo(0.9 + 0.1 * 2, 1e-6);
        const evalF = tf.tidy(() => m.features(x).arraySync());
        expect(evalF[0]![0]).to.be.closeTo((1 - 0.2) / Math.sqrt(1.1 + 1e-5), 1e-5);
        // The classifier starts at zero: every class equally likely.
        expect(tf.tidy(() => m.logits(x).arraySync())).to.deep.equal([
          [0, 0],
          [0, 0],
        ]);
        x.dispose();
      } finally {
        m.dispose();
      }
    });

    it('or each image by its own mean and std', () => {
      const m = factory('linear', { image_size: 2, channels: 1, input_mean: [0], input_std: [1], standardise: 'image' }).build(2, 0);
      try {
        const f = tf.tidy(() => m.features(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])).dataSync());
        const sd = Math.sqrt(1.25 + 1e-5);
        [-1.5, -0.5, 0.5, 1.5].forEach((v, i) => expect(f[i]).to.be.closeTo(v / sd, 1e-5));
        expect(bufferSize(m)).to.equal(0);
      } finally {
        m.dispose();
      }
    });
  });

  describe('on every backend', () => {
    // Small sizes, so tfjs's JS convolutions on cpu (the reference) take seconds.
    const cases = [
      { label: 'small CNN', name: 'small-cnn', options: { image_size: 16, widths: [4, 8], dropout: 0 } },
      // At 16 px ResNet's last BatchNorms normalise 4 values (1×1 × a batch of 4) and blow float32
      // rounding up to 11 % of a gradient on any two backends. At 64 px (16 values) cpu and wasm
      // differ by 3.2e-3 of a gradient's largest entry; native (built for AVX2 on a CPU without
      // AVX-512) and cpu by 6.6e-3 when this test runs alone or in the full suite, and by 4.9e-2
      // after this file's other tests (native repeats a step bit for bit across processes). The
      // batch-statistics kernels themselves are compared at 1e-4 in
      // test/native/conv.test.ts; here a wrong kernel would be off by a gradient's own size.
      { label: 'ResNet-18', name: 'resnet', options: { depth: 18, image_size: 64 }, tolerance: 0.1 },
      { label: 'MobileNetV3-Small', name: 'mobilenet-v3', options: { size: 'small', image_size: 32, dropout: 0 } },
    ];

    /** Loss, gradients and the statistics after one training-mode pass, on the active backend. */
    function step(m: Backbone, x: tf.Tensor4D, labels: tf.Tensor1D) {
      const trained = m.trainableVariables();
      const { value, grads } = tf.variableGrads(() => tf.mean(crossEntropy(m.logits(x, { training: true }), labels, m.numClasses, 0.1)) as tf.Scalar, trained);
      const out = {
        loss: value.dataSync()[0]!,
        grads: trained.map((v) => grads[v.name]!.dataSync().slice() as Float32Array),
        stats: [...m.namedVariables()].filter(([n]) => n.endsWith('running_var')).map(([, v]) => v.dataSync().slice() as Float32Array),
      };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    }

    function expectSameStep(a: ReturnType<typeof step>, b: ReturnType<typeof step>, what: string, tolerance = 2e-3) {
      expect(b.loss, `${what}: loss`).to.be.closeTo(a.loss, 1e-4 * Math.abs(a.loss));
      a.grads.forEach((g, i) => {
        let scale = 1e-3;
        let diff = 0;
        g.forEach((v, k) => {
          scale = Math.max(scale, Math.abs(v));
          diff = Math.max(diff, Math.abs(v - b.grads[i]![k]!));
        });
        expect(diff / scale, `${what}: gradient ${i}`).to.be.below(tolerance);
      });
      a.stats.forEach((s, i) => s.forEach((v, k) => expect(b.stats[i]![k], `${what}: running variance ${i}`).to.be.closeTo(v, 1e-4 * Math.abs(v) + 1e-6)));
    }

    for (const c of cases) {
      it(`${c.label}: a training step's loss and gradients on native equal the JS cpu backend's`, async function () {
        const previous = requireNative(this);
        const f = factory(c.name, c.options);
        const size = f.imageSize;
        const x = tf.randomUniform([4, size, size, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
        const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
        try {
          await tf.setBackend('cpu');
          const cpuModel = f.build(3, 5);
          const onCpu = step(cpuModel, x, labels);
          cpuModel.dispose();
          await tf.setBackend('native');
          const nativeModel = f.build(3, 5);
          const before = tf.memory().numTensors;
          const onNative = step(nativeModel, x, labels);
          expect(tf.memory().numTensors).to.equal(before);
          nativeModel.dispose();
          expectSameStep(onCpu, onNative, c.label, c.tolerance);
        } finally {
          tf.dispose([x, labels]);
          await tf.setBackend(previous);
        }
      });
    }

    it('every backbone runs forward on wasm with the cpu backend’s logits, and trains there (convolutions as matrix products)', async function () {
      if (await backendAvailable('wasm')) this.skip();
      const all = [
        ...cases,
        { label: 'ResNet-50', name: 'resnet', options: { depth: 50, image_size: 16 } },
        { label: 'VGG13-BN', name: 'vgg', options: { image_size: 32, dropout: 0 } },
        { label: 'linear', name: 'linear', options: { image_size: 16 } },
      ];
      try {
        for (const c of all) {
          await tf.setBackend('cpu');
          const f = factory(c.name, c.options);
          const m = f.build(3, 5);
          const x = tf.randomUniform([2, f.imageSize, f.imageSize, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
          // Train-mode statistics first, so the eval pass below uses non-trivial running ones.
          tf.tidy(() => {
            m.logits(x, { training: true });
          });
          const onCpu = tf.tidy(() => m.logits(x).dataSync().slice() as Float32Array);
          await tf.setBackend('wasm'); // the same variables, moved
          const scale = onCpu.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
          // The path 'auto' takes there (matrix products), and wasm's own convolution kernels.
          for (const path of ['auto', 'kernel'] as const) {
            const previous = useConvImplementation(path);
            try {
              const onWasm = tf.tidy(() => m.logits(x).dataSync().slice() as Float32Array);
              onCpu.forEach((v, i) => expect(Math.abs(v - onWasm[i]!) / scale, `${c.label} logit ${i} (${path})`).to.be.below(1e-4));
            } finally {
              useConvImplementation(previous);
            }
          }
          m.dispose();
          x.dispose();
        }
        // wasm has no Conv2DBackpropFilter kernel: its convolutions train as matrix products.
        for (const c of [cases[0]!, cases[2]!]) {
          const f = factory(c.name, c.options);
          const size = f.imageSize;
          const x = tf.randomUniform([4, size, size, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
          const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
          await tf.setBackend('cpu');
          const cpuModel = f.build(3, 5);
          const onCpu = step(cpuModel, x, labels);
          cpuModel.dispose();
          await tf.setBackend('wasm');
          const wasmModel = f.build(3, 5);
          expectSameStep(onCpu, step(wasmModel, x, labels), `${c.label} on wasm`);
          wasmModel.dispose();
          tf.dispose([x, labels]);
        }
      } finally {
        await tf.setBackend('cpu');
      }
    });
  });

  it('the supervised stage trains the small CNN like the ViT: flat memory, an EMA copy, the loss going down', async function () {
    // On the BLAS backend: tfjs's JS filter gradient alone would take minutes.
    const previous = requireNative(this);
    await tf.setBackend('native');
    const r = await resolveRecipe(path.join(fixtures, 'recipes', 'tiny-run.yaml'), {
      sets: [
        'model.backbone={use: small-cnn, image_size: 16, widths: [16, 32, 64]}',
        'grid.rows=[]',
        'pipeline.supervised.mixing={use: none}',
        'pipeline.supervised.ema_decay=0.9',
      ],
    });
    const cfg = r.cells[0]!.config as any;
    const rctx = { seed: 1, scale: r.scale, recipeDir: '.' };
    const backbone = r.registry.create('backbone', cfg.model.backbone, rctx);
    const data = await r.registry.create('dataset', cfg.data.dataset, rctx).load({ imageSize: 16, trainSize: 84, testSize: 35 });
    const model = backbone.build(7, 3);
    const counts: number[] = [];
    const losses: number[] = [];
    const stage = r.registry.create(
      'finetune',
      {
        ...cfg.pipeline.supervised,
        epochs: 30,
        few_labels_epochs: 30,
        warmup_epochs: 0,
        lr: 3e-3,
        batch_size: 16,
        mixing: { use: 'none' },
        augment: { use: 'none' },
      },
      rctx,
    );
    const result = await stage.run(
      {
        model,
        buildCopy: () => backbone.build(7, 3, { trainable: false }),
        data,
        labeled: Int32Array.from({ length: 64 }, (_, i) => i),
        unlabeled: new Int32Array(0),
        labels: data.train.labels,
        boxes: data.train.boxes,
        seed: 5,
      },
      { onStep: (l) => void losses.push(l.metrics.loss!), onEpoch: () => void counts.push(tf.memory().numTensors), shouldStop: () => false },
    );
    try {
      expect(result.steps).to.equal(120);
      expect(new Set(counts.slice(1)).size, `tensor counts per epoch: ${counts.join(', ')}`).to.equal(1);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      // It fits its 64 labelled images, evaluated with the running statistics.
      const fit = evaluate(
        model,
        data.train,
        16,
        7,
        32,
        Int32Array.from({ length: 64 }, (_, i) => i),
      );
      expect(mean(losses.slice(-12)), `losses ${losses.map((l) => l.toFixed(2)).join(' ')}`).to.be.below(mean(losses.slice(0, 12)) - 0.3);
      expect(fit.accuracy, `accuracy on the labelled images`).to.be.above(0.6);
      expect(result.ema).to.not.equal(null);
      // The copy averaged the running statistics too.
      const name = 'blocks.1.1.bn.running_mean';
      expect(Array.from(result.ema!.namedVariables().get(name)!.dataSync()).some((v) => v !== 0)).to.equal(true);
    } finally {
      model.dispose();
      result.ema?.dispose();
      await tf.setBackend(previous);
    }
  });

  it('rejects images of the wrong size and options that do not fit, naming them', () => {
    const m = factory('resnet', { image_size: 32 }).build(2, 0);
    try {
      expect(() => m.logits(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D)).to.throw(/resnet18: expected images \[B, 32, 32, 3\]/);
    } finally {
      m.dispose();
    }
    expect(() => factory('vgg', { image_size: 16 })).to.throw(/image_size 16 is pooled below 1 px by 5 max pools; use at least 32 px/);
    expect(() => factory('small-cnn', { image_size: 4 })).to.throw(/image_size 4 is pooled below 1 px by 3 blocks/);
    expect(() => factory('small-cnn', { kernel: 4 })).to.throw(/kernel must be odd/);
    expect(() => factory('resnet', { channels: 1 })).to.throw(/input_mean and input_std need one value per channel \(1\)/);
  });
});
