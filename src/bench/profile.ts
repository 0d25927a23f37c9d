import * as tf from '@tensorflow/tfjs';
import { pathToFileURL } from 'node:url';

import { selectBackend } from '../engine/backend.ts';
import { createVitTrainStep, STEP_PRESETS, type StepPreset } from './vit-step.ts';
import { mulberry32 } from '../core/rng.ts';

/**
 * Per-kernel profile of one training step (`profileVitStep`, the step `npm run bench` times), and
 * a small ViT written inline with raw tfjs ops (`createVitStep`) that the native kernel tests use
 * to compare gradients between backends. The model follows the project's backbone layout: 2-D
 * activations [batch·tokens, width], fused qkv then split, 4-D attention products, softmax,
 * erf GELU, LayerNorm from mean/variance, softmax cross-entropy and Adam.
 */

export interface VitSpec {
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly tokens: number;
  readonly patchDim: number;
  readonly batch: number;
  readonly classes: number;
  readonly mlpRatio: number;
}

export const PROFILE_VIT: VitSpec = { dim: 192, depth: 4, heads: 3, tokens: 64, patchDim: 48, batch: 32, classes: 7, mlpRatio: 4 };

/** Multiply-add count ×2 of the matrix products of one forward pass. */
export function vitForwardFlops(s: VitSpec): number {
  const rows = s.batch * s.tokens;
  const mlp = s.dim * s.mlpRatio;
  const perBlock = 2 * rows * s.dim * (3 * s.dim + s.dim + 2 * mlp) + 2 * 2 * s.batch * s.tokens * s.tokens * s.dim;
  return 2 * rows * s.patchDim * s.dim + s.depth * perBlock + 2 * s.batch * s.dim * s.classes;
}

/** A training step (forward, backward, update) is about three forward passes of products. */
export function vitStepFlops(s: VitSpec): number {
  return 3 * vitForwardFlops(s);
}

export interface VitStep {
  readonly spec: VitSpec;
  readonly variables: readonly tf.Variable[];
  /** Loss of the fixed batch, as a scalar tensor (to use under tf.grad / variableGrads). */
  loss(): tf.Scalar;
  /** One Adam step on the fixed batch; returns the loss before the update. */
  step(): number;
  dispose(): void;
}

/**
 * Builds the model, a fixed random batch and an Adam optimizer on the current backend. Values are
 * generated in JS from `seed`, so every backend starts from identical weights and data.
 */
export function createVitStep(spec: VitSpec = PROFILE_VIT, seed = 1): VitStep {
  const rand = mulberry32(seed);
  const { dim: D, heads: H, tokens: T, patchDim: P, batch: B, classes: C } = spec;
  const hd = D / H;
  const M = D * spec.mlpRatio;
  const vars: tf.Variable[] = [];
  const uniform = (shape: number[], scale: number): tf.Variable => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (rand() * 2 - 1) * scale;
    const init = tf.tensor(v, shape);
    const variable = tf.variable(init);
    init.dispose();
    vars.push(variable);
    return variable;
  };
  const constant = (shape: number[], value: number): tf.Variable => {
    const init = tf.fill(shape, value);
    const variable = tf.variable(init);
    init.dispose();
    vars.push(variable);
    return variable;
  };
  const xavier = (i: number, o: number) => uniform([i, o], Math.sqrt(6 / (i + o)));
  const patchW = xavier(P, D);
  const patchB = constant([D], 0);
  const pos = uniform([T, D], 0.02);
  const blocks = Array.from({ length: spec.depth }, () => ({
    ln1g: constant([D], 1),
    ln1b: constant([D], 0),
    qkvW: xavier(D, 3 * D),
    qkvB: constant([3 * D], 0),
    projW: xavier(D, D),
    projB: constant([D], 0),
    ln2g: constant([D], 1),
    ln2b: constant([D], 0),
    fc1W: xavier(D, M),
    fc1B: constant([M], 0),
    fc2W: xavier(M, D),
    fc2B: constant([D], 0),
  }));
  const lnG = constant([D], 1);
  const lnB = constant([D], 0);
  const headW = xavier(D, C);
  const headB = constant([C], 0);

  const xv = new Float32Array(B * T * P);
  for (let i = 0; i < xv.length; i++) xv[i] = rand() * 2 - 1;
  const x = tf.tensor3d(xv, [B, T, P]);
  const labels = tf.tensor1d(
    Array.from({ length: B }, (_, i) => i % C),
    'int32',
  );
  const onehot = tf.oneHot(labels, C);
  labels.dispose();

  const layerNorm = (h: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D => {
    const mean = tf.mean(h, -1, true);
    const centred = tf.sub(h, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, 1e-6))), g), b) as tf.Tensor2D;
  };
  const linear = (h: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D => tf.add(tf.matMul(h, w), b) as tf.Tensor2D;
  const gelu = (h: tf.Tensor2D): tf.Tensor2D => tf.mul(tf.mul(h, 0.5), tf.add(tf.erf(tf.mul(h, Math.SQRT1_2)), 1)) as tf.Tensor2D;
  const toHeads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]) as tf.Tensor4D;

  const loss = (): tf.Scalar =>
    tf.tidy(() => {
      let h = linear(tf.reshape(x, [B * T, P]) as tf.Tensor2D, patchW, patchB);
      h = tf.reshape(tf.add(tf.reshape(h, [B, T, D]), pos), [B * T, D]) as tf.Tensor2D;
      for (const p of blocks) {
        const [q, k, v] = tf.split(linear(layerNorm(h, p.ln1g, p.ln1b), p.qkvW, p.qkvB), 3, 1);
        const scores = tf.matMul(toHeads(tf.mul(q!, 1 / Math.sqrt(hd))), toHeads(k!), false, true);
        const mixed = tf.matMul(tf.softmax(scores), toHeads(v!));
        const merged = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [B * T, D]) as tf.Tensor2D;
        h = tf.add(h, linear(merged, p.projW, p.projB)) as tf.Tensor2D;
        const hidden = gelu(linear(layerNorm(h, p.ln2g, p.ln2b), p.fc1W, p.fc1B));
        h = tf.add(h, linear(hidden, p.fc2W, p.fc2B)) as tf.Tensor2D;
      }
      const pooled = tf.mean(tf.reshape(layerNorm(h, lnG, lnB), [B, T, D]), 1) as tf.Tensor2D;
      return tf.losses.softmaxCrossEntropy(onehot, linear(pooled, headW, headB)) as tf.Scalar;
    });

  const optimizer = tf.train.adam(1e-3);
  return {
    spec,
    variables: vars,
    loss,
    step() {
      const l = optimizer.minimize(loss, true, vars);
      const value = l ? l.dataSync()[0] : NaN;
      l?.dispose();
      return value;
    },
    dispose() {
      optimizer.dispose();
      for (const v of vars) v.dispose();
      x.dispose();
      onehot.dispose();
    },
  };
}

export interface KernelProfileRow {
  readonly bench: 'kernel-profile';
  readonly backend: string;
  readonly kernel: string;
  readonly ms: number;
  readonly calls: number;
}

export interface ProfileOptions {
  /** Backend to profile; by default the first available one (see src/engine/backend.ts). */
  readonly backend?: string;
  /** Print JSON lines instead of a table. */
  readonly json?: boolean;
  /** Where lines go (default console.log); pass null to print nothing. */
  readonly log?: ((line: string) => void) | null;
  /** Shape of the step (default: bench). */
  readonly preset?: StepPreset;
}

/**
 * Profiles one training step (after a warm-up step) and returns per-kernel total time, largest
 * first. Time of kernels that call other kernels internally is counted once, in the outer one.
 */
export async function profileVitStep(options: ProfileOptions = {}): Promise<KernelProfileRow[]> {
  const choice = await selectBackend(options.backend);
  const log = options.log === undefined ? (line: string) => console.log(line) : options.log;
  // The same step the bench times: the project's ViT and AdamW.
  const model = createVitTrainStep(STEP_PRESETS[options.preset ?? 'bench']);
  try {
    model.step();
    const start = performance.now();
    const info = await tf.profile(() => {
      model.step();
    });
    const stepMs = performance.now() - start;
    const totals = new Map<string, { ms: number; calls: number }>();
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const t = totals.get(k.name) ?? { ms: 0, calls: 0 };
      t.ms += ms;
      t.calls += 1;
      totals.set(k.name, t);
    }
    const rows: KernelProfileRow[] = [...totals.entries()]
      .map(([kernel, t]) => ({ bench: 'kernel-profile' as const, backend: choice.name, kernel, ms: round(t.ms), calls: t.calls }))
      .sort((a, b) => b.ms - a.ms);
    if (log) {
      if (options.json) {
        for (const r of rows) log(JSON.stringify(r));
      } else {
        const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
        log(`kernel profile of one ViT training step on '${choice.name}': ${round(stepMs)} ms wall (profiled), ${round(kernelMs)} ms in kernels`);
        for (const r of rows) log(`${r.kernel.padEnd(24)} ${r.ms.toFixed(2).padStart(10)} ms ${String(r.calls).padStart(6)} calls`);
      }
    }
    return rows;
  } finally {
    model.dispose();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--backend');
  const pre = args.indexOf('--preset');
  await profileVitStep({
    json: args.includes('--json'),
    backend: at >= 0 ? args[at + 1] : undefined,
    preset: pre >= 0 ? (args[pre + 1] as StepPreset) : undefined,
  });
}
