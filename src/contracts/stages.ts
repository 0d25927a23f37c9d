import type * as tf from '@tensorflow/tfjs';

/** Named weights handed from one stage to the next. */
export type Weights = Record<string, tf.Tensor>;

/** What the pipeline gives a stage plugin: everything it may need, nothing global. */
export interface StageContext {
  readonly seed: number;
  readonly cellId: string;
  readonly workDir: string;
  readonly log: (metrics: Record<string, number>, step: number) => void;
  readonly progress: (info: { epoch: number; epochs: number; step: number; steps: number; loss?: number }) => void;
  readonly signal?: AbortSignal;
}

export interface StageResult {
  readonly summary: string;
}

/** `pretrain` plugins: produce encoder weights for fine-tuning (null: start from random). */
export interface Pretrainer {
  readonly name: string;
  run(ctx: StageContext & { [extra: string]: unknown }): Promise<StageResult & { weights: Weights | null }>;
}

/** `ssl` plugins: the semi-supervised stage, updating the model in place. */
export interface SemiSupervised {
  readonly name: string;
  run(ctx: StageContext & { [extra: string]: unknown }): Promise<StageResult>;
}
