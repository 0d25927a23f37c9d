import { nullable, pair, Type, type Static, type TObject } from '../core/schema.ts';

/** The defaults a training stage gives `trainingStageOptions`. */
export interface StageDefaults {
  readonly epochs: number;
  readonly warmup_epochs: number;
  readonly lr: number;
  readonly min_lr: number;
  readonly warmup_lr: number;
  readonly batch_size: number;
  readonly weight_decay: number;
  readonly betas?: [number, number];
}

/**
 * Options every training stage shares (pre-training, supervised and semi-supervised fine-tuning),
 * stated once so stage plugins include them instead of redefining them.
 */
export function trainingStageOptions(d: StageDefaults) {
  return {
    epochs: Type.Integer({ minimum: 0, default: d.epochs, description: 'training epochs' }),
    warmup_epochs: Type.Number({ minimum: 0, default: d.warmup_epochs, description: 'linear warm-up epochs before cosine decay' }),
    lr: Type.Number({ exclusiveMinimum: 0, default: d.lr, description: 'peak learning rate (AdamW)' }),
    min_lr: Type.Number({ minimum: 0, default: d.min_lr, description: 'learning rate at the end of cosine decay' }),
    warmup_lr: Type.Number({ minimum: 0, default: d.warmup_lr, description: 'learning rate at the start of warm-up' }),
    batch_size: Type.Integer({ minimum: 1, default: d.batch_size, description: 'images per optimisation step' }),
    weight_decay: Type.Number({ minimum: 0, default: d.weight_decay, description: 'AdamW decoupled weight decay' }),
    betas: pair(Type.Number({ minimum: 0, exclusiveMaximum: 1 }), { default: d.betas ?? [0.9, 0.999], description: 'AdamW (β1, β2)' }),
    max_steps: nullable(Type.Integer({ minimum: 1 }), {
      default: null,
      description: 'stop after this many steps (smoke runs); null trains every epoch in full',
    }),
  };
}

/** The options `trainingStageOptions` declares, after validation (defaults filled in). */
export type TrainingStageOptions = Static<TObject<ReturnType<typeof trainingStageOptions>>>;
