import * as tf from '@tensorflow/tfjs';
import type { NamedTensors } from '../contracts/backbone.ts';
import { runInPlace } from './in-place.ts';
import { EMA_IN_PLACE_KERNEL } from '../core/kernel-names.ts';

/**
 * Exponential moving average of weights, θ_ema ← d·θ_ema + (1 − d)·θ, written into the
 * variables of a second model of the same shape (the EMA copy of the supervised stage, or the
 * EMA teacher of the semi-supervised one), so that model evaluates the averaged weights as is.
 */
export class Ema {
  private readonly pairs: { name: string; target: tf.Variable; source: tf.Variable }[] = [];
  private count = 0;

  /**
   * `target`: the averaged copy (e.g. teacher.namedVariables()); `source`: the trained weights
   * (student.namedVariables()). Names and shapes must match. Call `copy()` once after
   * construction when the copy does not already hold the source's weights.
   */
  constructor(
    target: ReadonlyMap<string, tf.Variable>,
    source: ReadonlyMap<string, tf.Variable>,
    readonly decay: number,
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new Error(`Ema: decay must be in [0, 1], got ${decay}`);
    const problems: string[] = [];
    for (const [name, t] of target) {
      const s = source.get(name);
      if (!s) problems.push(`'${name}' is in the EMA copy but not in the trained model`);
      else if (t.shape.some((d, i) => d !== s.shape[i]) || t.shape.length !== s.shape.length) {
        problems.push(`'${name}' has shape [${t.shape}] in the EMA copy but [${s.shape}] in the trained model`);
      } else this.pairs.push({ name, target: t, source: s });
    }
    for (const name of source.keys()) if (!target.has(name)) problems.push(`'${name}' is in the trained model but not in the EMA copy`);
    if (problems.length > 0) throw new Error(`Ema: the two models differ:\n  - ${problems.join('\n  - ')}`);
  }

  /** Number of updates so far. */
  get updates(): number {
    return this.count;
  }

  /** θ_ema ← θ (start of training, or FixMatch's teacher = student). */
  copy(): void {
    for (const p of this.pairs) p.target.assign(p.source);
  }

  /**
   * θ_ema ← d·θ_ema + (1 − d)·θ with d = `decay` unless given. Where the backend has the in-place
   * kernel (native), one call moves every average nothing else sees, with the same arithmetic; the
   * rest go op by op.
   */
  update(decay: number = this.decay): void {
    const d = decay;
    const inputs: tf.NamedTensorMap = {};
    this.pairs.forEach((p, i) => Object.assign(inputs, { [`target${i}`]: p.target, [`source${i}`]: p.source }));
    const inPlace = runInPlace(EMA_IN_PLACE_KERNEL, inputs, { count: this.pairs.length, decay: d });
    tf.tidy(() => {
      this.pairs.forEach((p, i) => {
        if (!inPlace?.[i]) p.target.assign(tf.add(tf.mul(p.target, d), tf.mul(p.source, 1 - d)));
      });
    });
    this.count += 1;
  }

  /** The averaged weights by name plus 'updates' (int32 scalar); fresh handles the caller disposes. */
  state(): NamedTensors {
    const out: NamedTensors = { updates: tf.scalar(this.count, 'int32') };
    for (const p of this.pairs) out[`weights.${p.name}`] = tf.clone(p.target);
    return out;
  }

  loadState(record: NamedTensors): void {
    const problems: string[] = [];
    if (!record.updates || record.updates.size !== 1) problems.push(`missing scalar 'updates'`);
    for (const p of this.pairs) {
      const t = record[`weights.${p.name}`];
      if (!t) problems.push(`missing 'weights.${p.name}'`);
      else if (t.shape.length !== p.target.shape.length || t.shape.some((d, i) => d !== p.target.shape[i])) {
        problems.push(`'weights.${p.name}' has shape [${t.shape}] but the EMA copy [${p.target.shape}]`);
      }
    }
    if (problems.length > 0) throw new Error(`Ema.loadState: the record does not fit:\n  - ${problems.join('\n  - ')}`);
    for (const p of this.pairs) p.target.assign(record[`weights.${p.name}`]!);
    this.count = record.updates!.dataSync()[0]!;
  }
}
