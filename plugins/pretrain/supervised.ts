import { definePlugin } from '../../src/core/plugin.ts';
import { trainingStageOptions } from '../../src/core/stage-schema.ts';

export default definePlugin({
  kind: 'pretrain',
  name: 'supervised',
  description: 'supervised pre-training: classification on a labeled pool (Table 11, the ImageNet-21k row)',
  status: 'planned',
  plannedReason: 'supervised pre-training arrives with the full pipeline',
  options: {
    type: 'object',
    properties: {
      pool: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: {
          source: { enum: ['faces', 'generic'], default: 'generic', description: 'which labeled pool to classify' },
          size: { type: 'integer', minimum: 1, default: 1200000 },
        },
      },
      label_smoothing: { type: 'number', minimum: 0, maximum: 1, default: 0.1 },
      ...trainingStageOptions({ epochs: 90, warmup_epochs: 5, lr: 1e-3, min_lr: 1e-5, warmup_lr: 1e-6, batch_size: 256, weight_decay: 0.05 }),
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
