import { definePlugin, slot, type PluginSlot } from '../../src/core/plugin.ts';
import { trainingStageOptions } from '../../src/core/stage-schema.ts';
import type { SemiSupervised } from '../../src/contracts/stages.ts';
import type { Augmentation } from '../../src/contracts/training.ts';
import { runSemi, type SemiOptions } from './internal/semi.ts';

export const sslOptions = (momentumDefault: number) => ({
  type: 'object',
  properties: {
    momentum: { type: 'number', minimum: 0, maximum: 1, default: momentumDefault, description: 'teacher EMA momentum m: θ_t ← m·θ_t + (1 − m)·θ_s' },
    threshold: { type: 'number', minimum: 0, maximum: 1, default: 0.7, description: 'confidence τ a pseudo-label needs' },
    unlabeled_weight: { type: 'number', minimum: 0, default: 5, description: 'μ in L = L_l + μ·L_u' },
    unlabeled_ratio: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'unlabeled images per labeled image in a batch' },
    milestones: { type: 'array', items: { type: 'integer', minimum: 0 }, default: [20, 40], description: 'epochs at which the lr is multiplied by gamma' },
    gamma: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1 },
    evaluate: {
      enum: ['teacher', 'student'],
      default: 'teacher',
      description: 'weights the stage leaves in the model for evaluation: the EMA teacher (mean-teacher practice) or the student',
    },
    weak: slot('augment', 'weak', 'augmentation of the teacher input'),
    strong: slot('augment', 'strong', 'augmentation of the student input'),
    ...trainingStageOptions({ epochs: 50, warmup_epochs: 0, lr: 1.5e-4, min_lr: 1.5e-6, warmup_lr: 1.5e-4, batch_size: 64, weight_decay: 0.05, betas: [0.9, 0.999] }),
  },
});

export type SslPluginOptions = SemiOptions & { weak: PluginSlot; strong: PluginSlot };

export default definePlugin<SslPluginOptions, SemiSupervised>({
  kind: 'ssl',
  name: 'ema-teacher',
  description: 'EMA-teacher: pseudo-labels from an EMA of the student on weak views, student trained on strong views above threshold τ',
  options: sslOptions(0.999),
  create(o, pctx) {
    const weak = pctx.resolve<Augmentation>('augment', o.weak);
    const strong = pctx.resolve<Augmentation>('augment', o.strong);
    return { name: 'ema-teacher', run: async (ctx) => runSemi(ctx, o, { name: 'ema-teacher', teacher: 'ema', weak, strong }) };
  },
});
