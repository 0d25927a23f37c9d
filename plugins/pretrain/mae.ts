import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, nullable, options, slot, Type, type Static } from '../../src/core/schema.ts';
import { trainingStageOptions } from '../../src/train/stage-options.ts';
import { isTokenBackbone, type NamedTensors } from '../../src/contracts/backbone.ts';
import { Rng } from '../../src/core/rng.ts';
import { gatherImages } from '../../src/train/batches.ts';
import { AdamW, defaultNoDecay } from '../../src/train/optimizer.ts';
import { decoderSpec, MaskedAutoencoder, randomMasking } from './internal/mae-model.ts';
import { lossHealth } from '../../src/train/health.ts';
import { encoderWeights, finalLoss, poolBoxes, poolLoop } from './internal/loop.ts';
import { imageGridPng } from '../../src/data/picture.ts';

const maeOptions = options({
  mask_ratio: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.75, description: 'share of patches masked per image (the paper: 0.75)' }),
  norm_pix: Type.Boolean({ default: true, description: "targets are per-patch normalised pixels (the paper's text; the authors' code trains on raw pixels)" }),
  decoder: options(
    {
      dim: nullable(Type.Integer({ minimum: 1 }), {
        default: null,
        description: 'decoder token width (divisible by 4 and by heads); null: from the backbone width',
      }),
      depth: nullable(Type.Integer({ minimum: 1 }), { default: null, description: 'decoder blocks; null: from the backbone width' }),
      heads: nullable(Type.Integer({ minimum: 1 }), { default: null, description: 'decoder attention heads; null: from the backbone width' }),
    },
    {
      additionalProperties: false,
      default: {},
      description: 'decoder size; null fields follow the backbone width (≥ 768: 512/8/16 as Base/Large, ≥ 384: 192/1/6 as Small, narrower: 96/1/3 as Tiny)',
    },
  ),
  pool: options(
    {
      source: choice(['faces', 'generic'], { default: 'faces', description: 'face-recognition images or generic images' }),
      size: Type.Integer({ minimum: 1, default: 1200000, description: 'images in the pre-training pool' }),
    },
    { additionalProperties: false, default: {} },
  ),
  augment: slot(
    'augment',
    { use: 'weak', scale: [0.2, 1.0] },
    "augmentation of the pool images (MAE and the authors' code: random resized crop of 20–100 % + flip)",
  ),
  picture_images: Type.Integer({ minimum: 1, maximum: 32, default: 8, description: 'pool images shown in the originals / masked / reconstruction picture' }),
  ...trainingStageOptions({ epochs: 600, warmup_epochs: 50, lr: 3.4e-4, min_lr: 0, warmup_lr: 0, batch_size: 256, weight_decay: 0.05, betas: [0.9, 0.95] }),
});

export type MaeOptions = Static<typeof maeOptions>;

export default definePlugin({
  kind: 'pretrain',
  name: 'mae',
  description: 'masked-autoencoder pre-training: random patch masking, encoder on visible patches, light decoder, loss on masked patches',
  requires: [
    {
      path: 'model.backbone',
      provides: 'tokens',
      because: 'MAE masks patch tokens, so it pre-trains a token backbone such as vit; for this backbone choose pipeline.pretrain: none or supervised',
    },
  ],
  options: maeOptions,
  create(o, pctx) {
    const augment = pctx.resolve('augment', o.augment);
    return {
      name: 'mae',
      async run(ctx, hooks) {
        const pool = await ctx.pool(o.pool.source, o.pool.size);
        const model = ctx.backbone.build(1, ctx.seed, { fixedSincosPositions: true });
        let mae: MaskedAutoencoder | null = null;
        let optimizer: AdamW | null = null;
        try {
          if (!isTokenBackbone(model))
            throw new Error(`mae: the backbone '${model.kind}' does not expose patch tokens; MAE needs a token backbone such as vit`);
          if (pool.imageSize !== model.imageSize)
            throw new Error(`mae: the pool holds ${pool.imageSize} px images but the backbone takes ${model.imageSize} px`);
          const spec = decoderSpec(model.dim, o.decoder);
          mae = new MaskedAutoencoder(model, spec, o.norm_pix, Rng.derive(ctx.seed, 'mae', 'init').seed());
          const enc = mae.encoderVariables();
          const dec = mae.decoderVariables();
          optimizer = new AdamW(new Map([...enc, ...dec]), {
            beta1: o.betas[0],
            beta2: o.betas[1],
            weightDecay: o.weight_decay,
            noDecay: (name, v) => (enc.has(name) ? model.noWeightDecay(name) : defaultNoDecay(name, v)),
          });
          const m = mae;
          const opt = optimizer;
          const result = await poolLoop({
            poolSize: pool.size,
            options: o,
            seed: Rng.derive(ctx.seed, 'mae').seed(),
            hooks,
            parts: { weights: new Map([...enc, ...dec]), optimizer: opt },
            step(idx, lr, step) {
              const rng = Rng.derive(ctx.seed, 'mae', 'step', step);
              return tf.tidy(() => {
                const raw = gatherImages(pool.images, idx, pool.imageSize, model.channels);
                const views = augment.apply(raw, poolBoxes(pool, idx), rng);
                const masking = randomMasking(idx.length, model.numPatches, o.mask_ratio, rng);
                return opt.minimize(() => m.loss(views.images, masking, { training: true }), lr);
              });
            },
          });
          if (result.stopped) return { weights: null, stopped: true, summary: `mae: stopped after ${result.steps} steps` };
          const picture = await maePicture(m, pool.images, pool.size, pool.imageSize, model.channels, o, ctx.seed);
          const weights: NamedTensors = encoderWeights(model.namedVariables());
          const loss = finalLoss(result);
          return {
            weights,
            picture,
            ...lossHealth(result),
            summary: `mae: ${result.epochs} epochs, ${result.steps} steps, mask ${o.mask_ratio}, ${o.norm_pix ? 'normalised' : 'raw'} pixels, decoder ${spec.dim}/${spec.depth}/${spec.heads}, ${pool.size} ${pool.kind} images${loss}`,
          };
        } finally {
          optimizer?.dispose();
          mae?.dispose();
          model.dispose();
        }
      },
    };
  },
});

/** Originals / masked / reconstructions of the first pool images, with a fixed mask. */
async function maePicture(
  mae: MaskedAutoencoder,
  images: Float32Array,
  poolSize: number,
  size: number,
  channels: number,
  o: MaeOptions,
  seed: number,
): Promise<Uint8Array> {
  const count = Math.min(o.picture_images, poolSize);
  const idx = Int32Array.from({ length: count }, (_, i) => i);
  const originals = gatherImages(images, idx, size, channels);
  const masking = randomMasking(count, mae.encoder.numPatches, o.mask_ratio, Rng.derive(seed, 'mae', 'picture'));
  const { masked, reconstruction } = mae.reconstruct(originals, masking);
  try {
    return await imageGridPng([originals, masked, reconstruction]);
  } finally {
    tf.dispose([originals, masked, reconstruction]);
  }
}
