import { BATCH_LIMIT, nullable, pair, Type, type Static, type TObject } from '../core/schema.ts';

/**
 * Upper bounds of the options every stage has, each with its reason (`x-bound`, printed with the
 * message): a typo such as `1e309` or `.inf` stops at validation instead of training forever or
 * diverging in the first step.
 */
const MAX_EPOCHS = 100_000;
const EPOCHS_BOUND = 'at most 100000 epochs: far past any schedule (the paper trains at most 1600), and a larger number never finishes';
const MAX_LR = 10;
const LR_BOUND = 'at most 10: AdamW rates are below 0.01 in practice, and a rate above 10 diverges in the first steps';

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
    epochs: Type.Integer({ minimum: 0, maximum: MAX_EPOCHS, 'x-bound': EPOCHS_BOUND, default: d.epochs, description: 'training epochs' }),
    warmup_epochs: Type.Number({
      minimum: 0,
      maximum: MAX_EPOCHS,
      'x-bound': EPOCHS_BOUND,
      default: d.warmup_epochs,
      description: 'linear warm-up epochs before cosine decay',
    }),
    lr: Type.Number({ exclusiveMinimum: 0, maximum: MAX_LR, 'x-bound': LR_BOUND, default: d.lr, description: 'peak learning rate (AdamW)' }),
    min_lr: Type.Number({ minimum: 0, maximum: MAX_LR, 'x-bound': LR_BOUND, default: d.min_lr, description: 'learning rate at the end of cosine decay' }),
    warmup_lr: Type.Number({ minimum: 0, maximum: MAX_LR, 'x-bound': LR_BOUND, default: d.warmup_lr, description: 'learning rate at the start of warm-up' }),
    batch_size: Type.Integer({ minimum: 1, ...BATCH_LIMIT, default: d.batch_size, description: 'images per optimisation step' }),
    weight_decay: Type.Number({
      minimum: 0,
      maximum: 10,
      'x-bound': 'at most 10: decoupled weight decay above 1 shrinks the weights to zero within a step',
      default: d.weight_decay,
      description: 'AdamW decoupled weight decay',
    }),
    betas: pair(Type.Number({ minimum: 0, exclusiveMaximum: 1 }), { default: d.betas ?? [0.9, 0.999], description: 'AdamW (β1, β2)' }),
    min_steps: nullable(Type.Integer({ minimum: 1, maximum: 1e12, 'x-bound': 'at most 10^12 steps: more than any run could take' }), {
      default: null,
      description:
        'train at least this many steps: epochs are added (the last one cut) where the epochs give fewer, so a small labeled set still gets its steps; max_steps still caps the stage',
    }),
    max_steps: nullable(Type.Integer({ minimum: 1, maximum: 1e12, 'x-bound': 'at most 10^12 steps: more than any run could take' }), {
      default: null,
      description: 'stop after this many steps (smoke runs); null trains every epoch in full',
    }),
  };
}

/** The options `trainingStageOptions` declares, after validation (defaults filled in). */
export type TrainingStageOptions = Static<TObject<ReturnType<typeof trainingStageOptions>>>;
