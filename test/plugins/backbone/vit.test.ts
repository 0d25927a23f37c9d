import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { Ajv } from 'ajv';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vitPlugin, { resolveVitConfig, VisionTransformer, vitParameterCount, type VitOptions } from '../../../plugins/backbone/vit.ts';
import { matMul, layerNorm, gelu, type Norm } from '../../../plugins/backbone/vit/layers.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import { isTokenBackbone } from '../../../src/contracts/backbone.ts';
import { loadTensors, saveTensors } from '../../../src/train/checkpoint.ts';
import { crossEntropy } from '../../../src/train/losses.ts';
import { AdamW } from '../../../src/train/optimizer.ts';
import { fineTuningOptimizer, layerDecayScale } from '../../../src/train/fine-tuning-optimizer.ts';
import { PEER_STEP_GFLOP, stepFlops } from '../../../src/bench/vit-step.ts';

const ctx: PluginContext = {
  seed: 7,
  scale: 'smoke',
  recipeDir: '.',
  resolve() {
    throw new Error('not used');
  },
};

const TINY: VitOptions = { dim: 32, depth: 2, heads: 2, mlp_ratio: 2, image_size: 16, patch_size: 4 };

function build(options: VitOptions, numClasses = 3, seed = 1): VisionTransformer {
  return vitPlugin.create({ ...TINY, ...options }, ctx).build(numClasses, seed);
}

function images(b: number, size = 16, seed = 3): tf.Tensor4D {
  return tf.randomUniform([b, size, size, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('vit backbone', function () {
  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('parameter counts', () => {
    it('ViT-B/16 at 224 with a 1000-class head and learned positions has the published 86.6 M weights', () => {
      const cfg = resolveVitConfig({ preset: 'base', pos_embed: 'learned' });
      const count = vitParameterCount(cfg, 1000);
      // timm vit_base_patch16_224: 86,567,656
      expect(count.total).to.equal(86_567_656);
      expect(count.trainable).to.equal(86_567_656);
    });

    it('matches Table 6 of the paper (7 classes, counted without the position embedding as ptflops counts, utils/tools.py:92)', () => {
      const millions = (preset: 'tiny' | 'small' | 'base' | 'large') =>
        vitParameterCount(resolveVitConfig({ preset, pos_embed_trainable: false }), 7).trainable / 1e6;
      expect(millions('tiny').toFixed(2)).to.equal('5.49');
      expect(millions('small').toFixed(1)).to.equal('21.6');
      expect(millions('base').toFixed(1)).to.equal('85.7');
      expect(millions('large').toFixed(1)).to.equal('303.1');
    });

    it('the analytic count of ViT-Tiny equals its allocated variables', () => {
      const factory = vitPlugin.create({ preset: 'tiny', pos_embed: 'learned', head: { hidden: 0, init_std: null } }, ctx);
      const model = factory.build(1000, 0);
      try {
        const allocated = model.trainableVariables().reduce((n, v) => n + v.size, 0);
        expect(allocated).to.equal(factory.parameterCount(1000).trainable);
        expect(allocated).to.equal(5_717_416); // timm vit_tiny_patch16_224
      } finally {
        model.dispose();
      }
    });

    it('the bench step is the peer’s 23 GFLOP by analytic count', () => {
      const { forward, step } = stepFlops();
      expect(step / 1e9).to.be.closeTo(PEER_STEP_GFLOP, 0.1);
      // 2·B·T·(P·D + L·(12·D² + 2·T·D)) + head, with B 32, T 64, P 48, D 192, L 4
      expect(forward).to.equal(2 * 32 * 64 * (48 * 192 + 4 * (12 * 192 * 192 + 2 * 64 * 192)) + 2 * 32 * 192 * 7);
    });

    it('counts an MLP head and a trained or fixed embedding the same way it allocates them', () => {
      for (const trained of [true, false]) {
        const factory = vitPlugin.create({ ...TINY, head: { hidden: 24, init_std: null }, pos_embed_trainable: trained }, ctx);
        const model = factory.build(5, 0);
        try {
          const allocated = model.trainableVariables().reduce((n, v) => n + v.size, 0);
          const all = [...model.namedVariables().values()].reduce((n, v) => n + v.size, 0);
          const count = factory.parameterCount(5);
          expect(allocated).to.equal(count.trainable);
          expect(all).to.equal(count.total);
          expect(count.total - count.trainable).to.equal(trained ? 0 : 17 * 32); // (16 patches + class token) × dim
        } finally {
          model.dispose();
        }
      }
    });
  });

  describe('options', () => {
    it('fills every default through the schema and resolves the preset', () => {
      const ajv = new Ajv({ useDefaults: true, strict: false, allowUnionTypes: true });
      const validate = ajv.compile(vitPlugin.options);
      const opts: Record<string, unknown> = {};
      expect(validate(opts), JSON.stringify(validate.errors)).to.equal(true);
      expect(opts).to.include({ preset: 'base', image_size: 224, patch_size: 16, dropout: 0, drop_path: 0, dim: null });
      expect(opts.head).to.deep.equal({ hidden: 0, init_std: null });
      const cfg = vitPlugin.create(opts as VitOptions, ctx).config;
      expect([cfg.dim, cfg.depth, cfg.heads, cfg.mlpDim]).to.deep.equal([768, 12, 12, 3072]);
      expect(validate({ preset: 'huge' })).to.equal(false);
      expect(validate({ colour: 1 })).to.equal(false);
    });

    it('rejects sizes that do not fit together, naming them', () => {
      expect(() => resolveVitConfig({ dim: 30, heads: 4 })).to.throw(/dim 30 is not divisible by heads 4/);
      expect(() => resolveVitConfig({ image_size: 30, patch_size: 16 })).to.throw(/image_size 30 is not a multiple of patch_size 16/);
      expect(() => resolveVitConfig({ class_token: false, pool: 'cls' })).to.throw(/pool 'cls' needs class_token/);
    });
  });

  describe('forward', () => {
    it('has the documented shapes at every stage', () => {
      const m = build({});
      const x = images(2);
      try {
        expect(isTokenBackbone(m)).to.equal(true);
        const shapes = tf.tidy(() => {
          const p = m.patchify(x);
          const e = m.embed(p);
          const t = m.withClassToken(e);
          const enc = m.encode(t);
          return [p.shape, e.shape, t.shape, enc.shape, m.pool(enc).shape, m.features(x).shape, m.logits(x).shape];
        });
        expect(shapes).to.deep.equal([
          [2, 16, 48],
          [2, 16, 32],
          [2, 17, 32],
          [2, 17, 32],
          [2, 32],
          [2, 32],
          [2, 3],
        ]);
        expect(() => m.logits(images(1, 20))).to.throw(/expected images \[B, 16, 16, 3\]/);
      } finally {
        x.dispose();
        m.dispose();
      }
    });

    it('patchifies in (row, column, channel) order like MAE, and unpatchify inverts it', () => {
      const m = build({ input_mean: [0, 0, 0], input_std: [1, 1, 1] });
      try {
        tf.tidy(() => {
          const x = tf.tensor4d(
            Array.from({ length: 2 * 16 * 16 * 3 }, (_, i) => i),
            [2, 16, 16, 3],
          );
          const p = m.patchify(x).arraySync() as number[][][];
          // pixel (b=1, row 6, col 9, channel 2) → patch (6/4)·4 + 9/4 = 6, offset ((6%4)·4 + 9%4)·3 + 2 = 29
          expect(p[1]![6]![29]).to.equal(((1 * 16 + 6) * 16 + 9) * 3 + 2);
          expect(maxAbsDiff(m.unpatchify(m.patchify(x)), x)).to.equal(0);
        });
      } finally {
        m.dispose();
      }
    });

    it('normalises inputs per channel before patchify, and unpatchify undoes it', () => {
      const m = build({ input_mean: [0.5, 0.25, 0], input_std: [0.5, 0.25, 2] });
      try {
        tf.tidy(() => {
          const x = tf.fill([1, 16, 16, 3], 1) as tf.Tensor4D;
          const p = m.patchify(x).arraySync() as number[][][];
          // (1 − 0.5)/0.5 = 1, (1 − 0.25)/0.25 = 3, (1 − 0)/2 = 0.5
          expect(p[0]![0]!.slice(0, 3)).to.deep.equal([1, 3, 0.5]);
          expect(maxAbsDiff(m.unpatchify(m.patchify(x)), x)).to.be.below(1e-6);
        });
      } finally {
        m.dispose();
      }
    });

    it('uses MAE’s 2-D sin-cos positions (column in the first half, row in the second)', () => {
      const m = build({});
      try {
        const pe = m.sincosPositionEmbedding(8); // quarter 2: ω = 1, 1/100
        const v = pe.arraySync();
        pe.dispose();
        expect(v.length).to.equal(17);
        expect(v[0]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]); // class token row
        const row = v[1 + 1 * 4 + 2]!; // grid row 1, column 2
        const expected = [Math.sin(2), Math.sin(0.02), Math.cos(2), Math.cos(0.02), Math.sin(1), Math.sin(0.01), Math.cos(1), Math.cos(0.01)];
        row.forEach((x, i) => expect(x).to.be.closeTo(expected[i]!, 1e-6));
      } finally {
        m.dispose();
      }
    });

    it('pools by mean without a class token and supports an MLP head and tanh GELU', () => {
      const m = build({ class_token: false, pool: 'mean', head: { hidden: 16, init_std: null }, gelu: 'tanh' }, 4);
      const x = images(3);
      try {
        const out = tf.tidy(() => [m.withClassToken(m.embed(m.patchify(x))).shape, m.logits(x).shape]);
        expect(out).to.deep.equal([
          [3, 16, 32],
          [3, 4],
        ]);
        expect(m.headVariables().map((v) => v.shape)).to.deep.equal([[32, 16], [16], [16, 4], [4]]);
      } finally {
        x.dispose();
        m.dispose();
      }
    });
  });

  describe('initialisation', () => {
    it('is a function of the seed only', () => {
      const a = build({ pos_embed: 'learned' }, 3, 11);
      const b = build({ pos_embed: 'learned' }, 3, 11);
      const c = build({ pos_embed: 'learned' }, 3, 12);
      const x = images(2);
      try {
        for (const [name, v] of a.namedVariables()) expect(maxAbsDiff(v, b.namedVariables().get(name)!), name).to.equal(0);
        const [la, lb, lc] = [a.logits(x), b.logits(x), c.logits(x)];
        expect(maxAbsDiff(la, lb)).to.equal(0);
        expect(maxAbsDiff(la, lc)).to.be.greaterThan(1e-4);
        tf.dispose([la, lb, lc]);
      } finally {
        tf.dispose([x]);
        [a, b, c].forEach((m) => m.dispose());
      }
    });

    it('keeps encoder weights when only the number of classes changes', () => {
      const a = build({}, 3, 5);
      const b = build({}, 9, 5);
      try {
        expect(maxAbsDiff(a.namedVariables().get('blocks.1.mlp.fc2.weight')!, b.namedVariables().get('blocks.1.mlp.fc2.weight')!)).to.equal(0);
      } finally {
        a.dispose();
        b.dispose();
      }
    });

    it('follows MAE: Xavier-uniform linears, zero biases, unit norms, class token N(0, .02)', () => {
      const m = build({ dim: 64, heads: 4 });
      try {
        const v = (n: string) => m.namedVariables().get(n)!;
        const qkv = v('blocks.0.attn.qkv.weight');
        const bound = Math.sqrt(6 / (64 + 192));
        const maxAbs = tf.tidy(() => tf.max(tf.abs(qkv)).dataSync()[0]!);
        expect(maxAbs)
          .to.be.at.most(bound)
          .and.greaterThan(0.95 * bound);
        expect(tf.tidy(() => tf.max(tf.abs(v('blocks.0.attn.qkv.bias'))).dataSync()[0])).to.equal(0);
        expect(Array.from(v('norm.weight').dataSync()).every((x) => x === 1)).to.equal(true);
        const cls = Array.from(v('cls_token').dataSync());
        const std = Math.sqrt(cls.reduce((s, x) => s + x * x, 0) / cls.length);
        expect(std).to.be.within(0.012, 0.028);
        expect(m.noWeightDecay('cls_token')).to.equal(true);
        expect(m.noWeightDecay('blocks.0.norm1.weight')).to.equal(true);
        expect(m.noWeightDecay('blocks.0.attn.qkv.weight')).to.equal(false);
      } finally {
        m.dispose();
      }
    });

    it('numbers its layers as timm and BEiT do, for layer-wise rate decay', () => {
      const m = build({ dim: 32, heads: 2, depth: 2 });
      try {
        const scale = layerDecayScale(m, 0.5, 'supervised')!;
        // 3 layers: embeddings 0 → 0.5³, blocks.0 → 0.5², blocks.1 → 0.5, the final norm and the head → 1
        const want: Record<string, number> = {
          cls_token: 0.125,
          'patch_embed.weight': 0.125,
          'blocks.0.attn.qkv.weight': 0.25,
          'blocks.1.mlp.fc2.bias': 0.5,
          'norm.weight': 1,
          'head.weight': 1,
        };
        for (const [name, value] of Object.entries(want)) {
          expect(m.namedVariables().has(name), name).to.equal(true);
          expect(scale(name), name).to.equal(value);
        }
        expect(layerDecayScale(m, 1, 'supervised')).to.equal(undefined);
      } finally {
        m.dispose();
      }
    });

    it('trains only the head and the final norm at layer_decay 0 (a linear probe): the rest is bit for bit as it was', () => {
      const m = build({ dim: 32, heads: 2, depth: 2 });
      const before = new Map([...m.namedVariables()].map(([name, v]) => [name, v.dataSync().slice()] as const));
      const opt = fineTuningOptimizer(m, { betas: [0.9, 0.999], weight_decay: 0.05, layer_decay: 0 }, 'supervised');
      const x = images(4);
      const y = tf.tensor1d([0, 1, 2, 1], 'int32');
      try {
        const state = opt.state();
        const trained = Object.keys(state)
          .filter((k) => k.startsWith('m.'))
          .map((k) => k.slice(2))
          .sort();
        tf.dispose(Object.values(state));
        expect(trained).to.deep.equal(['head.bias', 'head.weight', 'norm.bias', 'norm.weight']);
        const loss = () => tf.mean(crossEntropy(m.logits(x, { training: true }), y, 3)) as tf.Scalar;
        const first = opt.minimize(loss, 0.05);
        for (let i = 0; i < 4; i++) opt.minimize(loss, 0.05);
        const last = opt.minimize(loss, 0.05);
        expect(last, 'the probe learns').to.be.below(first);
        for (const [name, v] of m.namedVariables()) {
          const same = v.dataSync().every((value, i) => value === before.get(name)![i]);
          expect(same, name).to.equal(!trained.includes(name));
        }
      } finally {
        opt.dispose();
        tf.dispose([x, y]);
        m.dispose();
      }
    });
  });

  describe('state', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ssfer-vit-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('save → load into a differently seeded model gives identical logits', async () => {
      const a = build({ pos_embed: 'learned', head: { hidden: 8, init_std: null } }, 3, 1);
      const b = build({ pos_embed: 'learned', head: { hidden: 8, init_std: null } }, 3, 2);
      const x = images(2);
      try {
        const state = a.state();
        await saveTensors(join(dir, 'vit.ckpt'), state, { note: 'round trip' });
        tf.dispose(Object.values(state));
        const { tensors, meta } = await loadTensors(join(dir, 'vit.ckpt'));
        expect(meta).to.deep.equal({ note: 'round trip' });
        const report = b.loadState(tensors);
        tf.dispose(Object.values(tensors));
        expect(report.missing).to.deep.equal([]);
        const [la, lb] = [a.logits(x), b.logits(x)];
        expect(maxAbsDiff(la, lb)).to.equal(0);
        tf.dispose([la, lb]);
      } finally {
        x.dispose();
        a.dispose();
        b.dispose();
      }
    });

    it('names every mismatched weight with both shapes and changes nothing', () => {
      const small = build({}, 3, 1);
      const wide = build({ dim: 48, heads: 2 }, 3, 2);
      const state = wide.state();
      try {
        const before = small.namedVariables().get('patch_embed.weight')!.dataSync().slice();
        expect(() => small.loadState(state)).to.throw(
          /vit\.loadState: the record does not fit the model:[\s\S]*'patch_embed\.weight' has shape \[48, 48\] in the record but \[48, 32\] in the model/,
        );
        expect(Array.from(small.namedVariables().get('patch_embed.weight')!.dataSync())).to.deep.equal(Array.from(before));
      } finally {
        tf.dispose(Object.values(state));
        small.dispose();
        wide.dispose();
      }
    });

    it('reports missing and unexpected weights, and loads an encoder under a new head', () => {
      const pre = build({}, 5, 1);
      const fine = build({}, 3, 2);
      const state = pre.state();
      try {
        const noNorm = { ...state };
        delete noNorm['norm.bias'];
        expect(() => fine.loadState(noNorm)).to.throw(/missing 'norm\.bias' \(expected shape \[32\]\)/);
        expect(() => fine.loadState({ ...state, extra: state['norm.bias']! })).to.throw(/unexpected 'extra'/);
        const encoder = Object.fromEntries(Object.entries(state).filter(([n]) => !n.startsWith('head.')));
        const report = fine.loadState(encoder, { allowMissing: ['head.'] });
        expect(report.missing).to.deep.equal(['head.weight', 'head.bias']);
        expect(maxAbsDiff(fine.namedVariables().get('blocks.0.attn.qkv.weight')!, pre.namedVariables().get('blocks.0.attn.qkv.weight')!)).to.equal(0);
      } finally {
        tf.dispose(Object.values(state));
        pre.dispose();
        fine.dispose();
      }
    });
  });

  describe('custom gradients', () => {
    // Reference versions taped by tfjs itself.
    const refLayerNorm = (x: tf.Tensor2D, n: Norm) => {
      const mean = tf.mean(x, -1, true);
      const c = tf.sub(x, mean);
      return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), n.eps))), n.weight), n.bias);
    };
    const refGelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

    async function checkOn(backend: string): Promise<void> {
      const previous = tf.getBackend();
      if (backend !== previous && !(await tf.setBackend(backend))) return;
      try {
        tf.tidy(() => {
          const x = tf.randomNormal([6, 8], 0, 2, 'float32', 1) as tf.Tensor2D;
          const w = tf.variable(tf.randomNormal([8], 1, 0.3, 'float32', 2), true);
          const b = tf.variable(tf.randomNormal([8], 0, 0.3, 'float32', 3), true);
          const dy = tf.randomNormal([6, 8], 0, 1, 'float32', 4);
          const norm: Norm = { weight: w, bias: b, eps: 1e-6 };
          const ours = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(tf.mul(layerNorm(xx as tf.Tensor2D, { ...norm, weight: ww as tf.Variable, bias: bb as tf.Variable }), dy)),
          );
          const ref = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(tf.mul(refLayerNorm(xx as tf.Tensor2D, { ...norm, weight: ww as tf.Variable, bias: bb as tf.Variable }), dy)),
          );
          const go = ours([x, w, b]);
          const gr = ref([x, w, b]);
          go.forEach((g, i) => expect(maxAbsDiff(g, gr[i]!), `layerNorm grad ${i} on ${backend}`).to.be.below(2e-5));
          expect(maxAbsDiff(layerNorm(x, norm), refLayerNorm(x, norm))).to.be.below(1e-6);
          w.dispose();
          b.dispose();

          const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(gelu(xx, 'erf'), dy)))(x);
          const gxRef = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(refGelu(xx), dy)))(x);
          expect(maxAbsDiff(gx, gxRef), `gelu grad on ${backend}`).to.be.below(1e-5);

          const a = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 5);
          const c = tf.randomNormal([2, 3, 4, 6], 0, 1, 'float32', 6);
          const ct = tf.randomNormal([2, 3, 6, 4], 0, 1, 'float32', 7);
          const d1 = tf.randomNormal([2, 3, 5, 6], 0, 1, 'float32', 8);
          const nn = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(matMul(p, q), d1)))([a, c]);
          const nnRef = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q), d1)))([a, c]);
          const nt = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(matMul(p, q, true), d1)))([a, ct]);
          const ntRef = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, false, true), d1)))([a, ct]);
          [...nn, ...nt].forEach((g, i) => expect(maxAbsDiff(g, [...nnRef, ...ntRef][i]!), `matMul grad ${i} on ${backend}`).to.be.below(1e-5));
        });
      } finally {
        if (tf.getBackend() !== previous) await tf.setBackend(previous);
      }
    }

    it('LayerNorm, GELU and matMul gradients equal tfjs’s own (cpu)', async () => {
      await checkOn('cpu');
    });

    it('… and on wasm, where the transposes are materialised', async function () {
      try {
        await import('@tensorflow/tfjs-backend-wasm');
      } catch {
        this.skip();
      }
      await checkOn('wasm');
    });
  });

  describe('backends', () => {
    it('gives the same logits and gradients on cpu and wasm (their code paths differ)', async function () {
      try {
        await import('@tensorflow/tfjs-backend-wasm');
      } catch {
        this.skip();
      }
      const run = async (backend: string) => {
        if (!(await tf.setBackend(backend))) return null;
        const m = build({ heads: 4, dropout: 0 }, 3, 1);
        const x = images(3);
        try {
          const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.logits(x))) as tf.Scalar, m.trainableVariables());
          const sums = [value.dataSync()[0]!, ...Object.values(grads).map((g) => tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!))];
          tf.dispose([value, grads]);
          return sums;
        } finally {
          x.dispose();
          m.dispose();
        }
      };
      try {
        const cpu = (await run('cpu'))!;
        const wasm = await run('wasm');
        if (!wasm) this.skip();
        cpu.forEach((v, i) => expect(wasm![i]!, `entry ${i}`).to.be.closeTo(v, 1e-4 * Math.max(1, Math.abs(v))));
      } finally {
        await tf.setBackend('cpu');
      }
    });
  });

  describe('training', () => {
    it('learns a separable toy problem and keeps the tensor count flat', () => {
      // Class 0: bright left half; class 1: bright right half; noise elsewhere.
      const n = 16;
      const model = build({ dropout: 0.1, drop_path: 0.1 }, 2, 3);
      const data = tf.tidy(() => {
        const noise = tf.randomUniform([n, 16, 16, 3], 0, 0.3, 'float32', 9);
        const cols = tf.range(0, 16).reshape([1, 1, 16, 1]);
        const left = tf.cast(tf.less(cols, 8), 'float32');
        const labels = tf.tensor1d(
          Array.from({ length: n }, (_, i) => i % 2),
          'int32',
        );
        const pattern = tf.where(tf.equal(labels.reshape([n, 1, 1, 1]), 0), tf.mul(left, tf.onesLike(noise)), tf.mul(tf.sub(1, left), tf.onesLike(noise)));
        return { x: tf.add(noise, tf.mul(pattern, 0.7)) as tf.Tensor4D, y: labels };
      });
      const opt = new AdamW(model.namedVariables(), { weightDecay: 0.05 });
      const loss = () => tf.mean(crossEntropy(model.logits(data.x, { training: true }), data.y)) as tf.Scalar;
      try {
        const losses: number[] = [];
        let tensorsAfterFirst = 0;
        for (let i = 0; i < 30; i++) {
          losses.push(opt.minimize(loss, 1e-3));
          if (i === 0) tensorsAfterFirst = tf.memory().numTensors;
          else expect(tf.memory().numTensors, `tensors after step ${i + 1}`).to.equal(tensorsAfterFirst);
        }
        const first = (losses[0]! + losses[1]! + losses[2]!) / 3;
        const last = (losses[27]! + losses[28]! + losses[29]!) / 3;
        expect(last, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).to.be.below(first * 0.5);
        const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.logits(data.x), 1), data.y), 'float32')).dataSync()[0]!);
        expect(acc).to.equal(1);
      } finally {
        opt.dispose();
        model.dispose();
        tf.dispose([data.x, data.y]);
      }
    });

    it('dropout acts only in training mode and draws the same masks for the same seed', () => {
      const a = build({ dropout: 0.3, drop_path: 0.2 }, 3, 4);
      const b = build({ dropout: 0.3, drop_path: 0.2 }, 3, 4);
      const x = images(2);
      try {
        tf.tidy(() => {
          expect(maxAbsDiff(a.logits(x), a.logits(x))).to.equal(0);
          const ta = a.logits(x, { training: true });
          expect(maxAbsDiff(ta, a.logits(x))).to.be.greaterThan(1e-5);
          expect(maxAbsDiff(ta, b.logits(x, { training: true }))).to.equal(0);
        });
      } finally {
        x.dispose();
        a.dispose();
        b.dispose();
      }
    });

    it('trains its sin-cos position embedding from the sin-cos values; MAE’s build and pos_embed_trainable: false keep it fixed', () => {
      const x = images(2);
      const y = tf.tensor1d([0, 2], 'int32');
      const positions = (m: VisionTransformer) => m.namedVariables().get('pos_embed')!.dataSync().slice();
      const step = (m: VisionTransformer) => {
        const opt = new AdamW(new Map([...m.namedVariables()].filter(([, v]) => v.trainable)), { weightDecay: 0.05 });
        opt.minimize(() => tf.mean(crossEntropy(m.logits(x, { training: true }), y)) as tf.Scalar, 1e-2);
        opt.dispose();
      };
      const fine = build({}, 3, 1);
      const mae = vitPlugin.create(TINY, ctx).build(3, 1, { fixedSincosPositions: true });
      const fixed = build({ pos_embed_trainable: false }, 3, 1);
      try {
        const sincos = tf.tidy(() => fine.sincosPositionEmbedding(TINY.dim!).dataSync().slice());
        for (const m of [fine, mae, fixed]) expect(Array.from(positions(m))).to.deep.equal(Array.from(sincos));
        expect(fine.trainableVariables()).to.include(fine.namedVariables().get('pos_embed'));
        expect(mae.trainableVariables()).not.to.include(mae.namedVariables().get('pos_embed'));
        expect(fixed.namedVariables().get('pos_embed')!.trainable).to.equal(false);
        for (const m of [fine, mae, fixed]) step(m);
        const moved = (m: VisionTransformer) => Math.max(...positions(m).map((v, i) => Math.abs(v - sincos[i]!)));
        expect(moved(fine)).to.be.greaterThan(1e-4);
        expect(moved(mae)).to.equal(0);
        expect(moved(fixed)).to.equal(0);
      } finally {
        tf.dispose([x, y]);
        fine.dispose();
        mae.dispose();
        fixed.dispose();
      }
    });

    it('builds a frozen copy whose weights gradients do not reach', () => {
      const factory = vitPlugin.create(TINY, ctx);
      const teacher = factory.build(3, 1, { trainable: false });
      try {
        expect(teacher.trainableVariables().every((v) => !v.trainable)).to.equal(true);
      } finally {
        teacher.dispose();
      }
    });

    it('creates a decoder stack with its own weights (MAE)', () => {
      const m = build({});
      const stack = m.createStack({ dim: 16, depth: 1, heads: 2, mlpRatio: 4 }, 3);
      try {
        const out = tf.tidy(() => stack.apply(tf.ones([2, 5, 16])).shape);
        expect(out).to.deep.equal([2, 5, 16]);
        expect([...stack.namedVariables().keys()]).to.include.members(['blocks.0.attn.qkv.weight', 'norm.weight']);
      } finally {
        stack.dispose();
        m.dispose();
      }
    });
  });
});
