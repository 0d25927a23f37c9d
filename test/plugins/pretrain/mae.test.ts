import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import sharp from 'sharp';
import vitPlugin, { type VitOptions } from '../../../plugins/backbone/vit.ts';
import {
  decoderSpec,
  defaultDecoder,
  gatherRows,
  keptCount,
  MaskedAutoencoder,
  maskedMse,
  patchTargets,
  randomMasking,
} from '../../../plugins/pretrain/internal/mae-model.ts';
import { isTokenBackbone, type BackboneFactory, type TokenBackbone } from '../../../src/contracts/backbone.ts';
import type { ImagePool } from '../../../src/contracts/dataset.ts';
import type { PretrainState, StageHooks, StepLog } from '../../../src/contracts/stages.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { Rng } from '../../../src/core/rng.ts';

const pctx: PluginContext = {
  seed: 5,
  scale: 'smoke',
  recipeDir: '.',
  resolve: () => {
    throw new Error('not used');
  },
};
const TINY: VitOptions = { preset: 'tiny', dim: 16, depth: 1, heads: 2, mlp_ratio: 2, image_size: 16, patch_size: 4, pool: 'mean' };

function factory(options: VitOptions = TINY): BackboneFactory {
  return vitPlugin.create(options, pctx);
}

function tokenModel(seed = 1): TokenBackbone {
  const m = factory().build(1, seed);
  if (!isTokenBackbone(m)) throw new Error('vit is a token backbone');
  return m;
}

/** Smooth random pictures (a few soft blobs each), so reconstruction can be learned. */
function pool(size: number, imageSize = 16, seed = 3): ImagePool {
  const rng = new Rng(seed);
  const px = imageSize * imageSize * 3;
  const images = new Float32Array(size * px);
  for (let i = 0; i < size; i++) {
    const blobs = Array.from({ length: 3 }, () => ({
      x: rng.uniform(0, imageSize),
      y: rng.uniform(0, imageSize),
      r: rng.uniform(2, 6),
      c: [rng.next(), rng.next(), rng.next()],
    }));
    for (let y = 0; y < imageSize; y++) {
      for (let x = 0; x < imageSize; x++) {
        for (let c = 0; c < 3; c++) {
          let v = 0.2;
          for (const b of blobs) v += 0.6 * b.c[c]! * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r));
          images[i * px + (y * imageSize + x) * 3 + c] = Math.min(1, v);
        }
      }
    }
  }
  return { kind: 'faces', imageSize, size, images };
}

function context(p: ImagePool, steps: StepLog[] = [], options: VitOptions = TINY): PretrainState & { hooks: StageHooks } {
  return {
    backbone: factory(options),
    pool: async () => p,
    seed: 9,
    hooks: { onStep: (l) => steps.push(l), shouldStop: () => false },
  };
}

/** A pretrain stage's arguments: the state and its hooks. */
const args = (ctx: PretrainState & { hooks: StageHooks }): [PretrainState, StageHooks] => [ctx, ctx.hooks];

describe('mae pre-training', function () {
  let registry: PluginRegistry;
  before(async () => {
    await tf.setBackend('cpu');
    registry = await createRegistry();
  });

  describe('masking', () => {
    it('keeps exactly round(N·(1 − r)) patches per sample, a different subset per sample', () => {
      for (const [n, r] of [
        [16, 0.75],
        [16, 0.5],
        [49, 0.75],
        [4, 0.9],
      ] as const) {
        const m = randomMasking(8, n, r, new Rng(1));
        const keep = Math.max(1, Math.round(n * (1 - r)));
        expect(m.keep).to.equal(keep);
        expect(keptCount(n, r)).to.equal(keep);
        const subsets = new Set<string>();
        for (let b = 0; b < 8; b++) {
          const kept = Array.from(m.kept.subarray(b * keep, (b + 1) * keep));
          const row = Array.from(m.mask.subarray(b * n, (b + 1) * n));
          expect(row.filter((v) => v === 0)).to.have.length(keep);
          expect(kept).to.deep.equal([...kept].sort((a, c) => a - c));
          for (const p of kept) expect(row[p]).to.equal(0);
          subsets.add(kept.join(','));
        }
        if (n >= 16) expect(subsets.size).to.be.greaterThan(4);
      }
    });

    it('is determined by the generator', () => {
      expect(randomMasking(4, 16, 0.75, new Rng(3)).kept).to.deep.equal(randomMasking(4, 16, 0.75, new Rng(3)).kept);
      expect(randomMasking(4, 16, 0.75, new Rng(3)).kept).to.not.deep.equal(randomMasking(4, 16, 0.75, new Rng(4)).kept);
    });
  });

  describe('targets and loss', () => {
    it('norm_pix: each patch minus its mean over √(unbiased var + 1e-6), as MAE', () => {
      const t = patchTargets(
        tf.tensor3d([
          [
            [1, 2, 3, 4],
            [2, 2, 2, 2],
          ],
        ]),
        true,
      );
      const std = Math.sqrt(5 / 3 + 1e-6);
      const got = Array.from(t.dataSync());
      [-1.5, -0.5, 0.5, 1.5].forEach((v, i) => expect(got[i]).to.be.closeTo(v / std, 1e-5));
      for (const v of got.slice(4)) expect(v).to.equal(0);
      const raw = patchTargets(tf.tensor3d([[[1, 2, 3, 4]]]), false);
      expect(Array.from(raw.dataSync())).to.deep.equal([1, 2, 3, 4]);
      tf.dispose([t, raw]);
    });

    it('counts masked patches only', () => {
      const pred = tf.zeros([1, 3, 2]) as tf.Tensor3D;
      const target = tf.tensor3d([
        [
          [1, 1],
          [2, 2],
          [100, 100],
        ],
      ]);
      const loss = maskedMse(pred, target, tf.tensor2d([[1, 1, 0]]));
      expect(loss.dataSync()[0]).to.be.closeTo((1 + 4) / 2, 1e-6);
      tf.dispose([pred, target, loss]);
    });

    it('a decoder predicting zeros gives the mean square of the masked targets', () => {
      const model = tokenModel();
      for (const normPix of [false, true]) {
        const mae = new MaskedAutoencoder(model, { dim: 8, depth: 1, heads: 2 }, normPix, 1);
        const dec = mae.decoderVariables();
        dec.get('decoder_pred.weight')!.assign(tf.zerosLike(dec.get('decoder_pred.weight')!));
        const images = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
        const m = randomMasking(3, model.numPatches, 0.75, new Rng(7));
        const loss = tf.tidy(() => mae.loss(images, m).dataSync()[0]!);
        const expected = tf.tidy(() => {
          const target = patchTargets(model.patchify(images), normPix);
          const mask = tf.tensor3d(m.mask, [3, model.numPatches, 1]);
          return tf.sum(tf.mul(tf.square(target), mask)).dataSync()[0]! / (tf.sum(mask).dataSync()[0]! * model.patchDim);
        });
        expect(loss).to.be.closeTo(expected, 1e-4 * expected);
        images.dispose();
        mae.dispose();
      }
      model.dispose();
    });

    it('the loss does not depend on what the decoder predicts for visible patches', () => {
      const model = tokenModel();
      const mae = new MaskedAutoencoder(model, { dim: 8, depth: 1, heads: 2 }, false, 1);
      const images = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
      const m = randomMasking(2, model.numPatches, 0.75, new Rng(7));
      const out = mae.forward(images, m);
      // Change predictions where the mask is 0: the masked MSE must not move.
      const visible = tf.sub(1, out.mask).expandDims(2);
      const moved = tf.add(out.pred, tf.mul(visible, 50)) as tf.Tensor3D;
      const a = maskedMse(out.pred, out.target, out.mask).dataSync()[0]!;
      const b = maskedMse(moved, out.target, out.mask).dataSync()[0]!;
      expect(b).to.be.closeTo(a, 1e-5);
      tf.dispose([images, out.pred, out.target, out.mask, out.patches, visible, moved]);
      mae.dispose();
      model.dispose();
    });

    it('masked patches cannot reach the encoder: changing one leaves the encoder output unchanged, changing a visible one does not', () => {
      const model = tokenModel();
      const mae = new MaskedAutoencoder(model, { dim: 8, depth: 1, heads: 2 }, true, 1);
      // Record what the (real) encoder returns on each forward pass.
      const seen: Float32Array[] = [];
      const encode = model.encode.bind(model);
      model.encode = (x, o) => {
        const y = encode(x, o);
        seen.push(y.dataSync() as Float32Array);
        return y;
      };
      const m = randomMasking(2, model.numPatches, 0.75, new Rng(7));
      const base = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
      const pixels = base.dataSync() as Float32Array;
      /** The batch with every pixel of patch p (4×4, a 4×4 grid) of sample 0 replaced. */
      const withPatch = (p: number) => {
        const out = Float32Array.from(pixels);
        const [row, col] = [Math.floor(p / 4), p % 4];
        for (let y = 0; y < 4; y++)
          for (let x = 0; x < 4; x++)
            for (let c = 0; c < 3; c++) out[((row * 4 + y) * 16 + col * 4 + x) * 3 + c] = 1 - out[((row * 4 + y) * 16 + col * 4 + x) * 3 + c]!;
        return tf.tensor4d(out, [2, 16, 16, 3]);
      };
      const masked = Array.from({ length: 16 }, (_, p) => p).filter((p) => m.mask[p] === 1);
      const visible = Array.from(m.kept.subarray(0, m.keep));
      expect(masked).to.have.length(12);
      const run = (images: tf.Tensor4D) => {
        const out = mae.forward(images, m);
        tf.dispose([images, out.pred, out.target, out.mask, out.patches]);
        return seen.at(-1)!;
      };
      const reference = run(tf.clone(base));
      for (const p of masked) expect(Array.from(run(withPatch(p))), `masked patch ${p}`).to.deep.equal(Array.from(reference));
      for (const p of visible) expect(Array.from(run(withPatch(p))), `visible patch ${p}`).to.not.deep.equal(Array.from(reference));
      base.dispose();
      mae.dispose();
      model.dispose();
    });

    it('gathers rows with a scatter-add gradient (repeated rows summed)', () => {
      const table = tf.tensor2d([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const rows = Int32Array.from([2, 0, 2]);
      const weights = tf.tensor2d([
        [1, 10],
        [100, 1000],
        [2, 20],
      ]);
      const { value, grad } = tf.tidy(() => {
        const g = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t as tf.Tensor2D, rows), weights)));
        const r = g(table);
        return { value: r.value.dataSync()[0]!, grad: Array.from(r.grad.dataSync()) };
      });
      expect(value).to.equal(5 + 60 + 100 + 2000 + 10 + 120);
      expect(grad).to.deep.equal([100, 1000, 0, 0, 3, 30]);
      tf.dispose([table, weights]);
    });

    it('decoder sizes follow the backbone width', () => {
      expect(defaultDecoder(768)).to.deep.equal({ dim: 512, depth: 8, heads: 16 });
      expect(defaultDecoder(1024)).to.deep.equal({ dim: 512, depth: 8, heads: 16 });
      expect(defaultDecoder(384)).to.deep.equal({ dim: 192, depth: 1, heads: 6 });
      expect(defaultDecoder(192)).to.deep.equal({ dim: 96, depth: 1, heads: 3 });
      expect(defaultDecoder(64)).to.deep.equal({ dim: 96, depth: 1, heads: 3 });
      expect(decoderSpec(64, { dim: 32, depth: null, heads: null })).to.deep.equal({ dim: 32, depth: 1, heads: 2 });
      expect(decoderSpec(768, { dim: null, depth: 2, heads: 8 })).to.deep.equal({ dim: 512, depth: 2, heads: 8 });
    });
  });

  describe('the plugin', () => {
    it('lowers the loss, returns encoder weights without the head, a picture, and frees its tensors', async () => {
      const before = tf.memory().numTensors;
      const steps: StepLog[] = [];
      const mae = registry.create(
        'pretrain',
        { use: 'mae', epochs: 30, warmup_epochs: 2, lr: 2e-3, batch_size: 16, augment: { use: 'none' }, pool: { size: 16 }, decoder: { dim: 32 } },
        pctx,
      );
      const p = pool(16);
      const out = await mae.run(...args(context(p, steps)));
      expect(steps).to.have.length(30);
      const mean = (xs: StepLog[]) => xs.reduce((a, s) => a + s.metrics.loss!, 0) / xs.length;
      expect(mean(steps.slice(-5))).to.be.lessThan(0.7 * mean(steps.slice(0, 5)));
      expect(out.summary).to.match(/^mae: 30 epochs, 30 steps, mask 0\.75/);
      expect(out.stopped).to.not.equal(true);
      const names = Object.keys(out.weights!);
      expect(names.some((n) => n.startsWith('head.'))).to.equal(false);
      expect(names).to.include('patch_embed.weight');

      // Loaded into a fresh backbone (new head), the weights change its features.
      const fresh = factory().build(7, 123);
      const probe = tf.tensor4d(p.images.slice(0, 2 * 16 * 16 * 3), [2, 16, 16, 3]);
      const f0 = fresh.features(probe);
      const report = fresh.loadState(out.weights!, { allowMissing: ['head.'] });
      expect(report.missing.every((n) => n.startsWith('head.'))).to.equal(true);
      const f1 = fresh.features(probe);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(f0, f1))).dataSync()[0]!)).to.be.greaterThan(1e-3);
      tf.dispose([probe, f0, f1]);
      fresh.dispose();

      const meta = await sharp(Buffer.from(out.picture!)).metadata();
      expect(meta.format).to.equal('png');
      // 3 rows (originals, masked, reconstructions) × 8 columns of 16 px tiles, 2 px gaps, ×6.
      expect(meta.width).to.equal((8 * 16 + 9 * 2) * 6);
      expect(meta.height).to.equal((3 * 16 + 4 * 2) * 6);
      tf.dispose(Object.values(out.weights!));
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('is deterministic for a seed and honours max_steps', async () => {
      const run = async () => {
        const steps: StepLog[] = [];
        const mae = registry.create(
          'pretrain',
          { use: 'mae', epochs: 5, max_steps: 3, batch_size: 4, pool: { size: 8 }, decoder: { dim: 16, heads: 2 } },
          pctx,
        );
        const out = await mae.run(...args(context(pool(8), steps)));
        tf.dispose(Object.values(out.weights!));
        return steps.map((s) => s.metrics.loss);
      };
      const a = await run();
      expect(a).to.have.length(3);
      expect(await run()).to.deep.equal(a);
    });

    it('stops on request without handing back weights', async () => {
      let calls = 0;
      const mae = registry.create('pretrain', { use: 'mae', epochs: 5, batch_size: 4, pool: { size: 8 }, decoder: { dim: 16, heads: 2 } }, pctx);
      const ctx = context(pool(8));
      const before = tf.memory().numTensors;
      const out = await mae.run(ctx, { onStep: () => undefined, shouldStop: () => ++calls > 2 });
      expect(out.stopped).to.equal(true);
      expect(out.weights).to.equal(null);
      expect(tf.memory().numTensors).to.equal(before);
    });
  });
});
