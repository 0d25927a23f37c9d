import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import sharp from 'sharp';
import { countComplexity } from '../../../plugins/analysis/internal/params-flops.ts';
import { gradCamReport, vitGradCam } from '../../../plugins/analysis/internal/gradcam.ts';
import { attackRegions, attackStripPng, gradientSign, perturb, regionMask } from '../../../plugins/analysis/internal/fgsm.ts';
import { jet, labelledGridPng, overlay } from '../../../plugins/analysis/internal/pictures.ts';
import vitPlugin, { type VitOptions } from '../../../plugins/backbone/vit.ts';
import resnetPlugin from '../../../plugins/backbone/resnet.ts';
import vggPlugin from '../../../plugins/backbone/vgg.ts';
import mobilenetPlugin from '../../../plugins/backbone/mobilenet-v3.ts';
import smallCnnPlugin from '../../../plugins/backbone/small-cnn.ts';
import type { Backbone, BackboneFactory, TokenBackbone } from '../../../src/contracts/backbone.ts';
import type { PluginContext, PluginDefinition } from '../../../src/core/plugin.ts';
import { analyse, evaluate } from '../../../src/pipeline/evaluate.ts';
import { createRegistry } from '../../../src/core/registry.ts';
import type { Analysis } from '../../../src/contracts/analysis.ts';
import { crossEntropy } from '../../../src/train/losses.ts';
import { onNative } from '../../native/helpers.ts';
import { useConvImplementation } from '../../../plugins/backbone/cnn/layers.ts';

const ctx: PluginContext = {
  seed: 7,
  scale: 'smoke',
  recipeDir: '.',
  resolve() {
    throw new Error('not used');
  },
};

function create<B extends Backbone>(def: PluginDefinition<any>, options: Record<string, unknown>): BackboneFactory<B> {
  const props = def.options.properties as Record<string, { default?: unknown }>;
  const full = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, structuredClone(v.default)]));
  return def.create({ ...full, ...options }, ctx) as BackboneFactory<B>;
}

const TINY: VitOptions = { dim: 8, depth: 2, heads: 2, mlp_ratio: 2, image_size: 8, patch_size: 4 };

function tinyVit(options: VitOptions = {}, classes = 3): TokenBackbone {
  return create<TokenBackbone>(vitPlugin, { ...TINY, ...options }).build(classes, 3);
}

function complexityOf(def: PluginDefinition<any>, options: Record<string, unknown>, classes: number) {
  const m = create(def, options).build(classes, 0);
  try {
    return countComplexity(m);
  } finally {
    m.dispose();
  }
}

describe('analyses', function () {
  this.timeout(900_000);

  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('params-flops', () => {
    it('counts a ViT’s multiply-adds as the closed formula N·P·D + L·T·(4D² + 2·D·M) + D·C, attention apart', () => {
      // 8 px / 4 → N = 4 patches of P = 48 values, T = 5 tokens, D 8, M 16, L 2, C 3.
      const c = complexityOf(vitPlugin, TINY as Record<string, unknown>, 3);
      expect(c.flops).to.equal(4 * 48 * 8 + 2 * 5 * (4 * 64 + 2 * 8 * 16) + 8 * 3);
      expect(c.attentionFlops).to.equal(2 * 2 * 5 * 5 * 8); // L · (q·kᵀ + softmax·v) = L · 2 · T² · D
      // + biases N·D + L·T·(3D + D + M + D) + C, the position embedding N·D (a weight added like a bias),
      // LayerNorms 2 · (2L + 1) · T · D, GELU L · T · M
      expect(c.layerFlops - c.flops).to.equal(4 * 8 + 2 * 5 * (24 + 8 + 16 + 8) + 3 + 4 * 8 + 2 * 5 * 5 * 8 + 2 * 5 * 16);
      expect(c.parameters).to.equal(create(vitPlugin, TINY as Record<string, unknown>).parameterCount(3).trainable);
      expect(c.buffers).to.equal(0);
    });

    it('counts convolutions as out · k² · in and a depthwise one as out · k², either way they run', () => {
      // small CNN at 8 px, widths [2, 4]: 8²·9·(3·2 + 2·2) + 4²·9·(2·4 + 4·4) + head 4·5
      const expected = 64 * 9 * (3 * 2 + 2 * 2) + 16 * 9 * (2 * 4 + 4 * 4) + 4 * 5;
      const c = complexityOf(smallCnnPlugin, { image_size: 8, widths: [2, 4] }, 5);
      expect(c.flops).to.equal(expected);
      // + BatchNorm 2 and ReLU 1 per convolution output, the classifier's bias
      expect(c.layerFlops - c.flops).to.equal(3 * (2 * 64 * 2 + 2 * 16 * 4) + 5);
      expect(c.byKernel).to.have.keys(['Conv2D', 'BatchMatMul']); // tfjs's kernels on cpu
      expect(c.buffers).to.equal(2 * (2 + 2 + 4 + 4));
    });

    describe('Table 6 and torchvision, at 224 px', function () {
      onNative({ select: true });

      it('the same convolutions counted through matrix products and through the convolution kernels', () => {
        const previous = useConvImplementation('matmul');
        let viaProducts: ReturnType<typeof complexityOf>;
        try {
          const c = complexityOf(smallCnnPlugin, { image_size: 8, widths: [2, 4] }, 5);
          expect(c.flops).to.equal(64 * 9 * (3 * 2 + 2 * 2) + 16 * 9 * (2 * 4 + 4 * 4) + 4 * 5);
          expect(c.layerFlops - c.flops).to.equal(3 * (2 * 64 * 2 + 2 * 16 * 4) + 5);
          expect(c.byKernel).to.have.keys(['BatchMatMul']);
          // Depthwise and strided convolutions: tfjs's kernels and the matrix products count alike.
          viaProducts = complexityOf(mobilenetPlugin, { size: 'small', image_size: 32 }, 7);
        } finally {
          useConvImplementation(previous);
        }
        useConvImplementation('kernel');
        try {
          const viaKernels = complexityOf(mobilenetPlugin, { size: 'small', image_size: 32 }, 7);
          expect(viaKernels.byKernel).to.include.keys(['Conv2D', 'DepthwiseConv2dNative']);
          expect(viaProducts.flops).to.equal(viaKernels.flops);
          expect(viaProducts.layerFlops).to.equal(viaKernels.layerFlops);
        } finally {
          useConvImplementation(previous);
        }
      });

      // Table 6 (7 classes): ViT-Tiny/Small/Base/Large 5.49/21.6/85.7/303.1 M, 1.1/4.3/16.9/59.7 G,
      // reproduced by the layer count (ptflops's, the authors' tool): 1.08, 4.26, 16.88, 59.73.
      // The weight products alone give 1.07, 4.24, 16.85, 59.65, and with attention (fvcore's
      // total) 1.25, 4.60, 17.56, 61.55: neither rounds to all four.
      const table6 = [
        { preset: 'tiny', params: '5.49', paramsDigits: 2, flops: '1.1' },
        { preset: 'small', params: '21.6', paramsDigits: 1, flops: '4.3' },
        { preset: 'base', params: '85.7', paramsDigits: 1, flops: '16.9' },
        { preset: 'large', params: '303.1', paramsDigits: 1, flops: '59.7' },
      ] as const;
      for (const row of table6) {
        it(`ViT-${row.preset}: ${row.params} M parameters and the paper’s ${row.flops} G`, () => {
          // Counted as the authors counted (ptflops counts the weights that require a gradient): with
          // the position embedding fixed, as MAE keeps it.
          const c = complexityOf(vitPlugin, { preset: row.preset, image_size: 224, patch_size: 16, pos_embed_trainable: false }, 7);
          expect((c.parameters / 1e6).toFixed(row.paramsDigits)).to.equal(row.params);
          const d = { tiny: 192, small: 384, base: 768, large: 1024 }[row.preset];
          const depth = row.preset === 'large' ? 24 : 12;
          expect(c.flops).to.equal(196 * 768 * d + depth * 197 * (4 * d * d + 2 * d * 4 * d) + d * 7);
          expect(c.attentionFlops).to.equal(depth * 2 * 197 * 197 * d);
          expect(c.layerFlops - c.flops).to.equal(
            196 * d + depth * 197 * (3 * d + d + 4 * d + d) + 7 + 196 * d + 2 * (2 * depth + 1) * 197 * d + depth * 197 * 4 * d,
          );
          expect((c.layerFlops / 1e9).toFixed(1)).to.equal(row.flops);
        });
      }

      // torchvision's model documentation (GFLOPS of each weight's `_ops`, 1000 classes, 224 px).
      const cnns = [
        { label: 'ResNet-18', def: resnetPlugin, options: { depth: 18 }, gflops: '1.814' },
        { label: 'ResNet-50', def: resnetPlugin, options: { depth: 50 }, gflops: '4.089' },
        { label: 'VGG13-BN', def: vggPlugin, options: { depth: 13 }, gflops: '11.308' },
        { label: 'MobileNetV3-Large', def: mobilenetPlugin, options: { size: 'large' }, gflops: '0.217' },
      ];
      for (const c of cnns) {
        it(`${c.label}: torchvision’s ${c.gflops} GFLOPs`, () => {
          const counted = complexityOf(c.def, { ...c.options, image_size: 224 }, 1000);
          expect((counted.flops / 1e9).toFixed(3)).to.equal(c.gflops);
          expect(counted.attentionFlops).to.equal(0);
        });
      }
    });
  });

  describe('gradcam', () => {
    it('equals the map computed by hand: finite-difference gradients, mean weights, ReLU, min–max', () => {
      const model = tinyVit({ pool: 'cls' }, 3);
      const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      try {
        const cam = vitGradCam(model, x, Int32Array.from([2, 0]));
        const grid = cam.grid.arraySync();
        // By hand: A = the patch tokens entering the last block; y_c as a function of A.
        const tokens = tf.tidy(() => model.encodeRange(model.withClassToken(model.embed(model.patchify(x))), 0, 1));
        const a = tokens.arraySync();
        const score = (t: number[][][], img: number, c: number) =>
          tf.tidy(() => model.classify(model.pool(model.encodeRange(tf.tensor3d([t[img]!]), 1, 2))).dataSync()[c]!);
        for (const [img, c] of [
          [0, 2],
          [1, 0],
        ] as const) {
          const weights = new Array<number>(8).fill(0);
          const h = 1e-2;
          for (let n = 1; n <= 4; n++) {
            for (let d = 0; d < 8; d++) {
              const up = a.map((r) => r.map((v) => [...v]));
              const down = a.map((r) => r.map((v) => [...v]));
              up[img]![n]![d]! += h;
              down[img]![n]![d]! -= h;
              weights[d]! += (score(up, img, c) - score(down, img, c)) / (2 * h) / 4;
            }
          }
          const raw = [1, 2, 3, 4].map((n) =>
            Math.max(
              0,
              weights.reduce((s, w, d) => s + w * a[img]![n]![d]!, 0),
            ),
          );
          const lo = Math.min(...raw);
          const hi = Math.max(...raw);
          const expected = raw.map((v) => (v - lo) / (hi - lo + 1e-7));
          const ours = grid[img]!.flat();
          expected.forEach((e, k) => expect(ours[k], `image ${img} patch ${k}`).to.be.closeTo(e, 2e-3));
        }
        expect(Array.from(cam.classes)).to.deep.equal([2, 0]);
        tokens.dispose();
        tf.dispose([cam.grid, cam.maps]);
      } finally {
        x.dispose();
        model.dispose();
      }
    });

    it('upsamples the grid bilinearly with half-pixel centres (hand-computed on 2×2 → 8×8)', () => {
      const model = tinyVit({ pool: 'mean' }, 3);
      const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
      try {
        const cam = vitGradCam(model, x);
        const g = cam.grid.arraySync()[0]!;
        const m = cam.maps.arraySync()[0]!;
        // Output pixel i samples the grid at (i + 0.5)/4 − 0.5, clamped to [0, 1].
        const at = (i: number) => Math.min(1, Math.max(0, (i + 0.5) / 4 - 0.5));
        const lerp = (p: number, q: number, t: number) => p + (q - p) * t;
        for (const [r, c] of [
          [0, 0],
          [3, 5],
          [5, 2],
          [7, 7],
          [2, 4],
        ] as const) {
          const ty = at(r);
          const tx = at(c);
          const e = lerp(lerp(g[0]![0]!, g[0]![1]!, tx), lerp(g[1]![0]!, g[1]![1]!, tx), ty);
          expect(m[r]![c]).to.be.closeTo(e, 1e-5);
        }
        const flat = m.flat();
        expect(Math.min(...flat)).to.be.at.least(0);
        expect(Math.max(...flat)).to.be.at.most(1 + 1e-6);
        expect(Math.max(...g.flat())).to.be.closeTo(1, 1e-5); // min–max normalised
        expect(Math.min(...g.flat())).to.equal(0);
        tf.dispose([cam.grid, cam.maps]);
      } finally {
        x.dispose();
        model.dispose();
      }
    });

    it('reports every image’s map, the mean per class and a picture, without leaking tensors', async () => {
      const model = tinyVit({}, 3);
      const n = 7;
      const images = Float32Array.from({ length: n * 8 * 8 * 3 }, (_, i) => (Math.sin(i * 0.7) + 1) / 2);
      const labels = Int32Array.from([0, 1, 2, 0, 1, 0, 0]);
      try {
        const before = tf.memory().numTensors;
        const r = await gradCamReport(model, { images, labels, size: n }, ['a', 'b', 'c'], { perClass: 2, batchSize: 3 });
        expect(tf.memory().numTensors).to.equal(before);
        expect(r.maps.length).to.equal(n * 64);
        expect(r.counts).to.deep.equal([4, 2, 1]);
        // Class 0's mean map is the mean of images 0, 3, 5, 6.
        for (const j of [0, 17, 63]) {
          const e = [0, 3, 5, 6].reduce((s, i) => s + r.maps[i * 64 + j]!, 0) / 4;
          expect(r.meanPerClass[j]).to.be.closeTo(e, 1e-6);
        }
        const meta = await sharp(r.picture).metadata();
        expect(meta.format).to.equal('png');
        expect(meta.width).to.be.above(3 * 96); // two images and the mean, enlarged
      } finally {
        model.dispose();
      }
    });
  });

  describe('fgsm-regions', () => {
    it('perturbs by at most ε, only inside the region, and in the direction that raises the loss', () => {
      const model = tinyVit({ pool: 'mean' }, 3);
      const x = tf.randomUniform([4, 8, 8, 3], 0.05, 0.95, 'float32', 2) as tf.Tensor4D;
      const labels = Int32Array.from([0, 1, 2, 1]);
      try {
        tf.tidy(() => {
          const maps = tf.randomUniform([4, 8, 8], 0, 1, 'float32', 3) as tf.Tensor3D;
          const sign = gradientSign(model, x, labels);
          for (const region of ['inside', 'outside'] as const) {
            const mask = regionMask(maps, 0.3, region);
            const adv = perturb(x, sign, mask, 0.04);
            const delta = tf.abs(tf.sub(adv, x));
            expect(tf.max(delta).dataSync()[0]).to.be.at.most(0.04 + 1e-6);
            expect(tf.min(adv).dataSync()[0]).to.be.at.least(0);
            expect(tf.max(adv).dataSync()[0]).to.be.at.most(1);
            // Outside the region nothing changes, not even by rounding.
            const untouched = tf.mul(delta, tf.sub(1, mask));
            expect(tf.max(untouched).dataSync()[0]).to.equal(0);
            // Inside, every pixel with a non-zero gradient moved by ε.
            const moved = tf.sum(tf.mul(tf.cast(tf.greater(delta, 0.039), 'float32'), mask)).dataSync()[0]!;
            const expected = tf.sum(tf.mul(tf.abs(sign), mask)).dataSync()[0]!;
            expect(moved).to.equal(expected);
            const m = mask.dataSync();
            const inside = maps.dataSync().map((v) => (v > 0.3 ? 1 : 0));
            m.forEach((v, i) => expect(v).to.equal(region === 'inside' ? inside[i] : 1 - inside[i]!));
          }
          // All pixels at a small ε: the loss goes up (the gradient's sign is the ascent direction).
          const all = tf.ones([4, 8, 8, 1]) as tf.Tensor4D;
          const loss = (t: tf.Tensor4D) => tf.sum(crossEntropy(model.logits(t), labels, 3, 0)).dataSync()[0]!;
          expect(loss(perturb(x, sign, all, 0.01))).to.be.above(loss(x));
        });
      } finally {
        x.dispose();
        model.dispose();
      }
    });

    it('gives the clean accuracy at ε = 0 and accuracy per ε for both regions', async () => {
      const model = tinyVit({ pool: 'mean' }, 3);
      const n = 9;
      const images = Float32Array.from({ length: n * 8 * 8 * 3 }, (_, i) => (Math.cos(i * 0.31) + 1) / 2);
      const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
      const maps = Float32Array.from({ length: n * 64 }, (_, i) => (i % 64) / 63);
      try {
        const r = attackRegions(model, images, labels, maps, n, { epsilons: [0, 0.05, 0.1], threshold: 0.3, batchSize: 4 });
        const clean = evaluate(model, { size: n, images, labels, boxes: new Float32Array(n * 4) }, 8, 3, 4);
        expect(r.inside[0]).to.equal(clean.accuracy);
        expect(r.outside[0]).to.equal(clean.accuracy);
        expect(r.inside).to.have.length(3);
        // Pixels j/63 > 0.3 (j = 19 … 63): 45 of 64 per map.
        expect(r.focusedShare).to.be.closeTo(45 / 64, 1e-9);
        const before = tf.memory().numTensors;
        const strip = await attackStripPng(model, images, labels, maps, 2, { epsilons: [0, 0.05, 0.1], threshold: 0.3 });
        expect(tf.memory().numTensors).to.equal(before);
        const meta = await sharp(strip).metadata();
        expect(meta.format).to.equal('png');
      } finally {
        model.dispose();
      }
    });
  });

  describe('pictures', () => {
    it('colours maps in jet and blends them over the image', () => {
      tf.tidy(() => {
        const c = jet(tf.tensor3d([0, 0.5, 1], [1, 1, 3])).arraySync()[0]![0]!;
        expect(c[0]).to.deep.equal([0, 0, 0.5]); // dark blue
        expect(c[1]).to.deep.equal([0.5, 1, 0.5]); // green
        expect(c[2]).to.deep.equal([0.5, 0, 0]); // dark red
        // 0.5 · 0.2 grey + 0.5 · jet(1) = (0.1 + 0.25, 0.1, 0.1)
        const o = overlay(tf.fill([1, 1, 1, 3], 0.2) as tf.Tensor4D, tf.tensor3d([1], [1, 1, 1]), 0.5).dataSync();
        [0.35, 0.1, 0.1].forEach((e, i) => expect(o[i]).to.be.closeTo(e, 1e-6));
      });
    });

    it('lays a labelled grid out around the image tiles', async () => {
      const rows = [tf.zeros([3, 8, 8, 3]) as tf.Tensor4D, tf.ones([3, 8, 8, 3]) as tf.Tensor4D];
      const png = await labelledGridPng(rows, ['neutral', 'happiness'], ['a', 'b', 'c'], 'title');
      tf.dispose(rows);
      const meta = await sharp(png).metadata();
      expect(meta.format).to.equal('png');
      expect(meta.width).to.be.above(3 * 96);
      expect(meta.height).to.be.above(2 * 96 + 52);
    });
  });

  describe('the analysis plugins, as the pipeline runs them', () => {
    const plugin = async (slot: { use: string; [k: string]: unknown }) => (await createRegistry()).create('analysis', slot, ctx);

    it('study the held-out images of a k-fold cell alone, leave no tensor behind, and report what they list', async () => {
      const model = tinyVit({ pool: 'mean' }, 3);
      const n = 10;
      const split = {
        size: n,
        images: Float32Array.from({ length: n * 8 * 8 * 3 }, (_, i) => (Math.sin(i * 0.37) + 1) / 2),
        labels: Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
        boxes: new Float32Array(n * 4),
      };
      const subset = Int32Array.from([1, 4, 5, 8, 9]);
      try {
        const analyses = [await plugin({ use: 'gradcam', per_class: 1 }), await plugin({ use: 'fgsm-regions', epsilons: [0, 0.1], strip: 1 })];
        const before = tf.memory().numTensors;
        const r = await analyse(analyses, { model, split, subset, classes: ['a', 'b', 'c'], batchSize: 2, cell: 'c' });
        expect(tf.memory().numTensors).to.equal(before);
        expect((r.figures.gradcam as any).count).to.equal(5);
        const mean = JSON.parse(r.files.find((f) => f.name === 'gradcam-mean.json')!.data as string);
        expect(mean.counts).to.deep.equal([1, 2, 2]); // labels 1, 1, 2, 2, 0
        // Unattacked, the held-out images are classified as the evaluation classifies them.
        const clean = evaluate(model, split, 8, 3, 2, subset);
        expect((r.figures['fgsm-regions'] as any).inside['0']).to.equal(clean.accuracy);
        expect(r.files.map((f) => f.name)).to.deep.equal(['gradcam.png', 'gradcam-mean.json', 'fgsm-regions.png']);
        // What each lists for a table to show is what it reports.
        const counted = await analyse([await plugin({ use: 'params-flops' })], { model, split, classes: ['a', 'b', 'c'], batchSize: 4, cell: 'c' });
        const registry = await createRegistry();
        const reported = { ...r.figures, ...counted.figures };
        const options = { gradcam: {}, 'fgsm-regions': { epsilons: [0, 0.1] }, 'params-flops': {} } as const;
        for (const [name, o] of Object.entries(options)) {
          for (const figure of registry.get('analysis', name).figures!(o as never)) {
            const [group, ...rest] = figure.split('.');
            const value = rest.length ? (reported[name] as any)[group!][rest.join('.')] : (reported[name] as any)[group!];
            expect(value, `${name}: ${figure}`).to.be.a('number');
          }
        }
      } finally {
        model.dispose();
      }
    });

    it('refuse a file named like one of the cell’s own, or written by two analyses', async () => {
      const model = tinyVit({}, 3);
      const split = { size: 2, images: new Float32Array(2 * 8 * 8 * 3).fill(0.5), labels: Int32Array.from([0, 1]), boxes: new Float32Array(8) };
      const writes = (name: string, file: string): Analysis => ({ name, run: async () => ({ figures: {}, files: [{ name: file, data: '{}' }] }) });
      try {
        const input = { model, split, classes: ['a', 'b', 'c'], batchSize: 2, cell: 'c' };
        let error = await analyse([writes('x', 'metrics.json')], input).catch((e: Error) => e);
        expect((error as Error).message).to.match(/analysis 'x' writes 'metrics\.json', which is not a plain file name of its own/);
        error = await analyse([writes('x', 'x.json'), writes('y', 'x.json')], input).catch((e: Error) => e);
        expect((error as Error).message).to.match(/analysis 'y' writes 'x\.json', which 'x' wrote already/);
        error = await analyse([writes('x', '../x.json')], input).catch((e: Error) => e);
        expect((error as Error).message).to.match(/not a plain file name/);
      } finally {
        model.dispose();
      }
    });
  });
});
