import * as tf from '@tensorflow/tfjs';
import vitPlugin from '../../plugins/backbone/vit.ts';
import type { PluginContext } from '../core/plugin.ts';
import { crossEntropy } from '../train/losses.ts';
import { AdamW } from '../train/optimizer.ts';

export interface StepShape {
  readonly batch: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly channels: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpRatio: number;
  readonly classes: number;
}

/**
 * The shapes of the peer benchmarks (the same ViT step in PyTorch, JAX and TensorFlow), one
 * supervised training step each (forward, backward, AdamW update), mean pooling, no class token:
 *  - bench: 32-px images in 4-px patches (64 tokens of 48 values), width 192, depth 4, 3 heads;
 *  - smoke: 32-px images in 8-px patches (16 tokens of 192 values), width 64, depth 2, 2 heads —
 *    the model of the recipes' smoke scale, bound by per-kernel overhead rather than arithmetic.
 * Both MLP 4×, batch 32, 7 classes.
 */
export const STEP_PRESETS = {
  bench: { batch: 32, imageSize: 32, patchSize: 4, channels: 3, dim: 192, depth: 4, heads: 3, mlpRatio: 4, classes: 7 },
  smoke: { batch: 32, imageSize: 32, patchSize: 8, channels: 3, dim: 64, depth: 2, heads: 2, mlpRatio: 4, classes: 7 },
} as const satisfies Record<string, StepShape>;

export type StepPreset = keyof typeof STEP_PRESETS;

export const STEP_SHAPE: StepShape = STEP_PRESETS.bench;

/**
 * The peers' GFLOP per step (their formula: 3 × the forward products, no head), kept identical so
 * effective GFLOP/s compare directly.
 */
export function peerStepGflop(s: StepShape): number {
  const n = (s.imageSize / s.patchSize) ** 2;
  const p = s.patchSize * s.patchSize * s.channels;
  const d = s.dim;
  return (3 * 2 * s.batch * n * (p * d + s.depth * (3 * d * d + d * d + 8 * d * d + 2 * n * d))) / 1e9;
}

/** The bench shape's figure, 23.0 GFLOP. */
export const PEER_STEP_GFLOP = Math.round(peerStepGflop(STEP_SHAPE) * 10) / 10;

/**
 * Multiply-adds ×2 of the step, counted from the shapes. Forward: patch embedding, per block the
 * qkv / projection / MLP products (24·D² per token with ratio 4) and the two attention products
 * (4·T·D per token), the head; backward costs two such products per forward one, so a step is
 * 3× the forward. Element-wise work is left out, as the peer's figure does.
 */
export function stepFlops(s: StepShape = STEP_SHAPE): { forward: number; step: number } {
  const tokens = (s.imageSize / s.patchSize) ** 2;
  const patchDim = s.patchSize * s.patchSize * s.channels;
  const mlp = s.dim * s.mlpRatio;
  const perToken = 2 * patchDim * s.dim + s.depth * (2 * (3 * s.dim * s.dim + s.dim * s.dim + 2 * s.dim * mlp) + 4 * tokens * s.dim);
  const forward = s.batch * tokens * perToken + 2 * s.batch * s.dim * s.classes;
  return { forward, step: 3 * forward };
}

export interface StepBenchResult {
  readonly bench: 'vit-train-step';
  readonly backend: string;
  readonly preset: string;
  readonly images_per_s: number;
  readonly effective_gflops: number;
  readonly step_s: number;
  readonly analytic_gflop: number;
  readonly warmup_steps: number;
  readonly timed_steps: number;
  readonly tensors_before: number;
  readonly tensors_after: number;
  readonly loss_first: number;
  readonly loss_last: number;
  /** Peak resident set of the process so far (MiB), from the kernel's high-water mark. */
  readonly peak_rss_mib: number;
  /**
   * CPU time of the whole process over the timed steps divided by their wall time: how many
   * cores the step kept busy (threads of the kernels, the BLAS and the runtime together). Peers
   * compared at "one thread" should show about 1 here too.
   */
  readonly cores_used: number;
}

const benchContext: PluginContext = {
  seed: 0,
  scale: 'smoke',
  recipeDir: '.',
  resolve() {
    throw new Error('the bench resolves no nested plugins');
  },
};

/**
 * The benchmarked training step, on the active backend: the project's ViT (STEP_SHAPE) with
 * AdamW on a fixed random batch. Returns the loss of each call to `step`.
 */
export function createVitTrainStep(s: StepShape = STEP_SHAPE): { step(): number; dispose(): void } {
  const factory = vitPlugin.create(
    {
      dim: s.dim,
      depth: s.depth,
      heads: s.heads,
      mlp_ratio: s.mlpRatio,
      image_size: s.imageSize,
      patch_size: s.patchSize,
      class_token: false,
      pool: 'mean',
    },
    benchContext,
  );
  const model = factory.build(s.classes, 0);
  const optimizer = new AdamW(model.namedVariables(), { beta1: 0.9, beta2: 0.999, weightDecay: 0 });
  const images = tf.randomUniform([s.batch, s.imageSize, s.imageSize, s.channels], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: s.batch }, (_, i) => i % s.classes),
    'int32',
  );
  const lossFn = () => tf.mean(crossEntropy(model.logits(images, { training: true }), labels)) as tf.Scalar;
  return {
    step: () => optimizer.minimize(lossFn, 1e-3),
    dispose() {
      optimizer.dispose();
      model.dispose();
      tf.dispose([images, labels]);
    },
  };
}

/** Runs on the active backend. */
export function runVitStep(options: { warmup: number; steps: number; preset?: StepPreset; onStep?: (i: number, seconds: number) => void }): StepBenchResult {
  const preset = options.preset ?? 'bench';
  const s = STEP_PRESETS[preset];
  const train = createVitTrainStep(s);
  const losses: number[] = [];
  const step = () => losses.push(train.step());
  try {
    for (let i = 0; i < options.warmup; i++) {
      const t0 = performance.now();
      step();
      options.onStep?.(i - options.warmup, (performance.now() - t0) / 1000);
    }
    const tensorsBefore = tf.memory().numTensors;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < options.steps; i++) {
      const ti = performance.now();
      step();
      options.onStep?.(i, (performance.now() - ti) / 1000);
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const stepSeconds = wallSeconds / options.steps;
    const tensorsAfter = tf.memory().numTensors;
    const flops = stepFlops(s);
    return {
      bench: 'vit-train-step',
      backend: tf.getBackend(),
      preset,
      images_per_s: round(s.batch / stepSeconds, 2),
      effective_gflops: round(peerStepGflop(s) / stepSeconds, 3),
      step_s: round(stepSeconds, 5),
      analytic_gflop: round(flops.step / 1e9, 2),
      warmup_steps: options.warmup,
      timed_steps: options.steps,
      tensors_before: tensorsBefore,
      tensors_after: tensorsAfter,
      loss_first: round(losses[0]!, 4),
      loss_last: round(losses[losses.length - 1]!, 4),
      peak_rss_mib: peakRssMib(),
      cores_used: round((cpu.user + cpu.system) / 1e6 / wallSeconds, 2),
    };
  } finally {
    train.dispose();
  }
}

/** The process's peak resident set in MiB (getrusage's maxrss, KiB on Linux). */
export function peakRssMib(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
