import type { JsonSchema } from './plugin.ts';

/** The options `trainingStageOptions` declares, after validation (defaults filled in). */
export interface TrainingStageOptions {
  epochs: number;
  warmup_epochs: number;
  lr: number;
  min_lr: number;
  warmup_lr: number;
  batch_size: number;
  weight_decay: number;
  betas: [number, number];
  max_steps: number | null;
}

/**
 * Options every training stage shares (pre-training, supervised and semi-supervised fine-tuning),
 * stated once so stage plugins include them instead of redefining them.
 */
export function trainingStageOptions(
  defaults: Omit<TrainingStageOptions, 'betas' | 'max_steps'> & { betas?: [number, number] },
): Record<string, JsonSchema> {
  return {
    epochs: { type: 'integer', minimum: 0, default: defaults.epochs, description: 'training epochs' },
    warmup_epochs: { type: 'number', minimum: 0, default: defaults.warmup_epochs, description: 'linear warm-up epochs before cosine decay' },
    lr: { type: 'number', exclusiveMinimum: 0, default: defaults.lr, description: 'peak learning rate (AdamW)' },
    min_lr: { type: 'number', minimum: 0, default: defaults.min_lr, description: 'learning rate at the end of cosine decay' },
    warmup_lr: { type: 'number', minimum: 0, default: defaults.warmup_lr, description: 'learning rate at the start of warm-up' },
    batch_size: { type: 'integer', minimum: 1, default: defaults.batch_size, description: 'images per optimisation step' },
    weight_decay: { type: 'number', minimum: 0, default: defaults.weight_decay, description: 'AdamW decoupled weight decay' },
    betas: {
      type: 'array',
      items: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
      minItems: 2,
      maxItems: 2,
      default: defaults.betas ?? [0.9, 0.999],
      description: 'AdamW (β1, β2)',
    },
    max_steps: { type: ['integer', 'null'], minimum: 1, default: null, description: 'stop after this many steps (smoke runs); null trains every epoch in full' },
  };
}
