import * as tf from '@tensorflow/tfjs';
import type { LoadStateOptions, LoadStateReport, NamedTensors } from '../../../src/contracts/backbone.ts';

let instances = 0;

/**
 * Weights of one module under stable names. tfjs keeps one global registry of variable names, so
 * each instance prefixes its own (a student and its EMA teacher hold the same logical names).
 */
export class ParamSet {
  readonly scope: string;
  private readonly vars = new Map<string, tf.Variable>();
  private readonly buffers = new Set<string>();

  constructor(
    kind: string,
    private readonly trainable: boolean,
  ) {
    // Another copy of this module (loaded from a second path) counts from 1 as well.
    const taken = (scope: string) => Object.keys(tf.engine().registeredVariables).some((n) => n.startsWith(`${scope}/`));
    let scope = `${kind}${++instances}`;
    while (taken(scope)) scope = `${kind}${++instances}`;
    this.scope = scope;
  }

  /**
   * `buffer`: a fixed value the optimizer never updates (BatchNorm's running statistics); it is
   * still a named variable, so checkpoints, loadState and the EMA copy carry it like a weight.
   */
  add(name: string, shape: number[], values: Float32Array | (() => Float32Array), options: { buffer?: boolean } = {}): tf.Variable {
    if (this.vars.has(name)) throw new Error(`${this.scope}: weight '${name}' defined twice`);
    const trainable = this.trainable && !options.buffer;
    const data = typeof values === 'function' ? values() : values;
    const v = tf.tidy(() => tf.variable(tf.tensor(data, shape, 'float32'), trainable, `${this.scope}/${name}`));
    this.vars.set(name, v);
    if (options.buffer) this.buffers.add(name);
    return v;
  }

  /** Whether `name` was added as a buffer (not trained). */
  isBuffer(name: string): boolean {
    return this.buffers.has(name);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`${this.scope}: no weight '${name}'`);
    return v;
  }

  entries(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.buffers.clear();
  }
}

export function stateOf(vars: ReadonlyMap<string, tf.Variable>): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, v] of vars) out[name] = tf.clone(v);
  return out;
}

function allowedMissing(options: LoadStateOptions | undefined): (name: string) => boolean {
  const allow = options?.allowMissing;
  if (!allow) return () => false;
  if (typeof allow === 'function') return allow;
  return (name) => allow.some((a) => a === name || (a.endsWith('.') && name.startsWith(a)));
}

const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Checks everything first and assigns afterwards, so a bad record leaves the weights as they
 * were; the message lists every problem at once with the shapes on both sides.
 */
export function loadInto(owner: string, vars: ReadonlyMap<string, tf.Variable>, record: NamedTensors, options?: LoadStateOptions): LoadStateReport {
  const mayMiss = allowedMissing(options);
  const problems: string[] = [];
  const loaded: string[] = [];
  const missing: string[] = [];
  for (const [name, v] of vars) {
    const t = record[name];
    if (t === undefined) {
      missing.push(name);
      if (!mayMiss(name)) problems.push(`missing '${name}' (expected shape ${fmtShape(v.shape)})`);
      continue;
    }
    if (t.isDisposed) {
      problems.push(`'${name}' in the record is a disposed tensor`);
      continue;
    }
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      problems.push(`'${name}' has shape ${fmtShape(t.shape)} in the record but ${fmtShape(v.shape)} in the model`);
      continue;
    }
    if (t.dtype !== v.dtype) {
      problems.push(`'${name}' has dtype ${t.dtype} in the record but ${v.dtype} in the model`);
      continue;
    }
    loaded.push(name);
  }
  const unexpected = Object.keys(record).filter((name) => !vars.has(name));
  if (unexpected.length > 0 && !options?.ignoreUnexpected) {
    const shown = unexpected
      .slice(0, 8)
      .map((n) => `'${n}'`)
      .join(', ');
    problems.push(`unexpected ${shown}${unexpected.length > 8 ? ` and ${unexpected.length - 8} more` : ''} (not in the model; pass ignoreUnexpected to skip)`);
  }
  if (problems.length > 0) {
    throw new Error(`${owner}.loadState: the record does not fit the model:\n  - ${problems.join('\n  - ')}`);
  }
  for (const name of loaded) vars.get(name)!.assign(record[name]!);
  return { loaded, missing, unexpected };
}
