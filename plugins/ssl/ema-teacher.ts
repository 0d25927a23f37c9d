import { definePlugin, slot } from '../../src/core/plugin.ts';
import { trainingStageOptions } from '../../src/core/stage-schema.ts';

export const sslOptions = (momentumDefault: number) => ({
  type: 'object',
  properties: {
    momentum: { type: 'number', minimum: 0, maximum: 1, default: momentumDefault, description: 'teacher EMA momentum m: θ_t ← m·θ_t + (1 − m)·θ_s' },
    threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.7, description: 'confidence τ a pseudo-label needs' },
    unlabeled_weight: { type: 'number', minimum: 0, default: 5, description: 'μ in L = L_l + μ·L_u' },
    unlabeled_ratio: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'unlabeled images per labeled image in a batch' },
    milestones: { type: 'array', items: { type: 'integer', minimum: 0 }, default: [20, 40], description: 'epochs at which the lr is multiplied by gamma' },
    gamma: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1 },
    weak: slot('augment', 'weak', 'augmentation of the teacher input'),
    strong: slot('augment', 'strong', 'augmentation of the student input'),
    ...trainingStageOptions({ epochs: 50, warmup_epochs: 0, lr: 1.5e-4, min_lr: 1.5e-6, warmup_lr: 1.5e-4, batch_size: 64, weight_decay: 0.05, betas: [0.9, 0.999] }),
  },
});

export default definePlugin({
  kind: 'ssl',
  name: 'ema-teacher',
  description: 'EMA-teacher: pseudo-labels from an EMA of the student on weak views, student trained on strong views above threshold τ',
  status: 'planned',
  plannedReason: 'semi-supervised fine-tuning arrives with the full pipeline; set pipeline.semi.use: none meanwhile',
  options: sslOptions(0.999),
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
