import { definePlugin } from '../../src/core/plugin.ts';
import { trainingStageOptions } from '../../src/core/stage-schema.ts';

export default definePlugin({
  kind: 'pretrain',
  name: 'mae',
  description: 'masked-autoencoder pre-training: random patch masking, encoder on visible patches, light decoder, loss on masked patches',
  status: 'planned',
  plannedReason: 'MAE pre-training arrives with the full pipeline; set pipeline.pretrain.use: none to fine-tune from random initialisation meanwhile',
  options: {
    type: 'object',
    properties: {
      mask_ratio: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.75, description: 'share of patches masked per image (the paper: 0.75)' },
      norm_pix: { type: 'boolean', default: true, description: "targets are per-patch normalised pixels (the paper's text; the authors' code trains on raw pixels)" },
      decoder: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description: 'decoder size; null fields follow the backbone preset (Base/Large 512/8/16, Small 192/1/6, Tiny 96/1/3)',
        properties: {
          dim: { type: ['integer', 'null'], minimum: 1, default: null },
          depth: { type: ['integer', 'null'], minimum: 1, default: null },
          heads: { type: ['integer', 'null'], minimum: 1, default: null },
        },
      },
      pool: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: {
          source: { enum: ['faces', 'generic'], default: 'faces', description: 'face-recognition images or generic images' },
          size: { type: 'integer', minimum: 1, default: 1200000, description: 'images in the pre-training pool' },
        },
      },
      ...trainingStageOptions({ epochs: 600, warmup_epochs: 50, lr: 3.4e-4, min_lr: 0, warmup_lr: 0, batch_size: 256, weight_decay: 0.05, betas: [0.9, 0.95] }),
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
