import * as tf from '@tensorflow/tfjs';
import { traced } from '../core/trace.ts';
import { runInPlace } from './in-place.ts';
import type { NamedTensors } from '../contracts/backbone.ts';
import { ADAMW_IN_PLACE_KERNEL, ADAMW_KERNEL } from '../core/kernel-names.ts';

export interface AdamWOptions {
  /** Default 0.9. */
  readonly beta1?: number;
  /** Default 0.999 (MAE and the SSFER code use 0.95). */
  readonly beta2?: number;
  /** Added to √v̂, as PyTorch does. Default 1e-8. */
  readonly epsilon?: number;
  /** Decoupled decay λ: θ ← θ − lr·λ·θ before the Adam step. Default 0.05 (MAE / SSFER code). */
  readonly weightDecay?: number;
  /**
   * Weights exempt from decay. Default `defaultNoDecay`: rank ≤ 1 (biases, LayerNorm weights and
   * biases) and names ending in cls_token, pos_embed or mask_token, as timm and MAE exempt them.
   */
  readonly noDecay?: (name: string, variable: tf.Variable) => boolean;
  /**
   * A weight's learning rate as a multiple of the step's `lr` (and so of its decay, as a PyTorch
   * parameter group's lr), e.g. `layerDecayScale`'s. Default 1 for every weight.
   */
  readonly lrScale?: (name: string) => number;
}

export function defaultNoDecay(name: string, variable: tf.Variable): boolean {
  return variable.shape.length <= 1 || /(^|\.)(cls_token|pos_embed|mask_token)$/.test(name);
}

const FUSED_BACKEND = 'native';

function hasFusedKernel(): boolean {
  try {
    return tf.getKernel(ADAMW_KERNEL, FUSED_BACKEND) !== undefined;
  } catch {
    return false;
  }
}

function inPlaceStep(pairs: [Slot, tf.Tensor][], attrs: Record<string, number>, weightDecay: number): Int32Array | null {
  const inputs: tf.NamedTensorMap = {};
  pairs.forEach(([s, g], i) => Object.assign(inputs, { [`param${i}`]: s.param, [`grad${i}`]: g, [`m${i}`]: s.m, [`v${i}`]: s.v }));
  return runInPlace(ADAMW_IN_PLACE_KERNEL, inputs, { ...attrs, count: pairs.length, weightDecays: pairs.map(([s]) => (s.decay ? weightDecay : 0)) });
}

interface Slot {
  readonly name: string;
  readonly param: tf.Variable;
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  readonly decay: boolean;
  /** Multiple of the step's lr. */
  readonly scale: number;
}

/** Gradients keyed by the variables' tfjs names, as `tf.variableGrads` returns them, or by variable. */
export type Gradients = tf.NamedTensorMap | ReadonlyMap<tf.Variable, tf.Tensor>;

/**
 * AdamW (Loshchilov & Hutter) with PyTorch's arithmetic, so one step matches torch.optim.AdamW:
 *   t ← t + 1;  θ ← θ·(1 − lr·λ)  (decayed weights only)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   θ ← θ − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 * Moments live in variables, so `state()` / `loadState()` restore a run exactly. A weight with
 * no gradient in a step is left alone (no decay, moments kept), as PyTorch skips it.
 */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly slots: Slot[] = [];
  private readonly byTfName = new Map<string, Slot>();
  private readonly byVariable = new Map<tf.Variable, Slot>();
  private t = 0;

  /** `params`: the weights to update under stable names (e.g. a model's namedVariables()). */
  constructor(params: ReadonlyMap<string, tf.Variable> | Record<string, tf.Variable>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.05;
    const noDecay = options.noDecay ?? defaultNoDecay;
    const entries = params instanceof Map ? [...params] : Object.entries(params as Record<string, tf.Variable>);
    for (const [name, param] of entries) {
      if (param.dtype !== 'float32') throw new Error(`AdamW: weight '${name}' is ${param.dtype}, not float32`);
      const slot: Slot = {
        name,
        param,
        m: tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
        v: tf.tidy(() => tf.variable(tf.zerosLike(param), false)),
        decay: !noDecay(name, param),
        scale: options.lrScale?.(name) ?? 1,
      };
      if (!(slot.scale > 0 && Number.isFinite(slot.scale)))
        throw new Error(`AdamW: the learning-rate scale of '${name}' is ${slot.scale}, not a positive number`);
      this.slots.push(slot);
      this.byTfName.set(param.name, slot);
      this.byVariable.set(param, slot);
    }
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.t;
  }

  /** Names of the weights that are decayed (for logs and tests). */
  decayedNames(): string[] {
    return this.slots.filter((s) => s.decay).map((s) => s.name);
  }

  /** One update with learning rate `lr`. The gradients stay the caller's to dispose. */
  step(grads: Gradients, lr: number): void {
    const pairs: [Slot, tf.Tensor][] = [];
    const entries: Iterable<[string | tf.Variable, tf.Tensor]> = grads instanceof Map ? grads.entries() : Object.entries(grads);
    for (const [key, g] of entries) {
      const slot = typeof key === 'string' ? this.byTfName.get(key) : this.byVariable.get(key);
      if (!slot) throw new Error(`AdamW.step: a gradient for '${typeof key === 'string' ? key : key.name}', which this optimizer does not hold`);
      if (g.shape.length !== slot.param.shape.length || g.shape.some((d, i) => d !== slot.param.shape[i])) {
        throw new Error(`AdamW.step: gradient of '${slot.name}' has shape [${g.shape}] but the weight [${slot.param.shape}]`);
      }
      pairs.push([slot, g]);
    }
    this.t += 1;
    if (tf.getBackend() === FUSED_BACKEND && hasFusedKernel()) {
      const groups = new Map<number, [Slot, tf.Tensor][]>();
      for (const pair of pairs) {
        const group = groups.get(pair[0].scale);
        if (group) group.push(pair);
        else groups.set(pair[0].scale, [pair]);
      }
      for (const [scale, group] of groups) this.fusedStep(group, lr * scale);
      return;
    }
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    const bc1 = 1 - Math.pow(b1, this.t);
    const sqrtBc2 = Math.sqrt(1 - Math.pow(b2, this.t));
    tf.tidy(() => {
      for (const [s, g] of pairs) {
        const rate = lr * s.scale;
        const m = tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), eps);
        const base = s.decay && this.weightDecay !== 0 ? tf.mul(s.param, 1 - rate * this.weightDecay) : s.param;
        s.param.assign(tf.sub(base, tf.mul(tf.div(m, denom), rate / bc1)));
        s.m.assign(m);
        s.v.assign(v);
      }
    });
  }

  /** The native kernels at one rate: one in-place call updates every weight nothing else sees; the rest go one by one. */
  private fusedStep(pairs: [Slot, tf.Tensor][], lr: number): void {
    const attrs = { lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, step: this.t };
    const inPlace = inPlaceStep(pairs, attrs, this.weightDecay);
    for (const [i, [s, g]] of pairs.entries()) {
      if (inPlace?.[i]) continue;
      const inputs = { param: s.param, grad: g, m: s.m, v: s.v };
      const out = tf.engine().runKernel(ADAMW_KERNEL, inputs, { ...attrs, weightDecay: s.decay ? this.weightDecay : 0 }) as tf.Tensor[];
      s.param.assign(out[0]!);
      s.m.assign(out[1]!);
      s.v.assign(out[2]!);
      tf.dispose(out);
    }
  }

  /**
   * Computes the gradients of `loss` with respect to the held weights, applies one step and
   * returns the loss value. For anything more (several outputs, clipping) call
   * tf.variableGrads and `step` directly.
   */
  minimize(loss: () => tf.Scalar, lr: number): number {
    const { value, grads } = tf.variableGrads(
      loss,
      this.slots.map((s) => s.param),
    );
    try {
      traced('optimizer', () => this.step(grads, lr));
      return value.dataSync()[0]!;
    } finally {
      value.dispose();
      tf.dispose(grads);
    }
  }

  /** 'step' (int32 scalar), 'm.<name>', 'v.<name>'; fresh handles the caller disposes. */
  state(): NamedTensors {
    const out: NamedTensors = { step: tf.scalar(this.t, 'int32') };
    for (const s of this.slots) {
      out[`m.${s.name}`] = tf.clone(s.m);
      out[`v.${s.name}`] = tf.clone(s.v);
    }
    return out;
  }

  /** Restores `state()` output exactly; every entry is checked before anything changes. */
  loadState(record: NamedTensors): void {
    const problems: string[] = [];
    const step = record.step;
    if (!step || step.size !== 1) problems.push(`missing scalar 'step'`);
    for (const s of this.slots) {
      for (const key of [`m.${s.name}`, `v.${s.name}`]) {
        const t = record[key];
        if (!t) problems.push(`missing '${key}'`);
        else if (t.shape.length !== s.param.shape.length || t.shape.some((d, i) => d !== s.param.shape[i])) {
          problems.push(`'${key}' has shape [${t.shape}] but the weight has [${s.param.shape}]`);
        } else if (t.dtype !== 'float32') problems.push(`'${key}' is ${t.dtype}, not float32`);
      }
    }
    const known = new Set(['step', ...this.slots.flatMap((s) => [`m.${s.name}`, `v.${s.name}`])]);
    const unexpected = Object.keys(record).filter((k) => !known.has(k));
    if (unexpected.length > 0)
      problems.push(
        `unexpected ${unexpected
          .slice(0, 8)
          .map((k) => `'${k}'`)
          .join(', ')}`,
      );
    if (problems.length > 0) throw new Error(`AdamW.loadState: the record does not fit this optimizer:\n  - ${problems.join('\n  - ')}`);
    for (const s of this.slots) {
      s.m.assign(record[`m.${s.name}`]!);
      s.v.assign(record[`v.${s.name}`]!);
    }
    this.t = step!.dataSync()[0]!;
  }

  dispose(): void {
    for (const s of this.slots) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.length = 0;
    this.byTfName.clear();
    this.byVariable.clear();
  }
}
