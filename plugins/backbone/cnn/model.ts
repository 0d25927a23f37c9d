import * as tf from '@tensorflow/tfjs';
import type { Backbone, ForwardOptions, LoadStateOptions, LoadStateReport, NamedTensors, ParameterCount } from '../../../src/contracts/backbone.ts';
import { Stream, streamKey } from '../vit/init.ts';
import type { Noise } from '../vit/layers.ts';
import { loadInto, ParamSet, stateOf } from '../vit/params.ts';
import type { ParamSink } from './layers.ts';

/** What a forward pass needs besides the weights. */
export interface Run extends Noise {
  readonly training: boolean;
}

/**
 * A network as a description: `build` adds its weights to a sink and returns them in whatever
 * structure the forward functions use, so the same code allocates a model and counts one.
 */
export interface Architecture<P> {
  readonly kind: string;
  readonly featureDim: number;
  build(sink: ParamSink, numClasses: number, seed: number): P;
  /** Normalised images [B, H, W, C] → pooled features [B, featureDim]. */
  features(p: P, x: tf.Tensor4D, run: Run): tf.Tensor2D;
  /** Features → class scores. */
  classify(p: P, features: tf.Tensor2D, run: Run): tf.Tensor2D;
}

/** The input side every image backbone here shares. */
export interface InputConfig {
  readonly imageSize: number;
  readonly channels: number;
  /** Per-channel mean and std the [0, 1] images are normalised with first. */
  readonly inputMean: readonly number[];
  readonly inputStd: readonly number[];
}

/** Records shapes instead of allocating: the analytic count of `BackboneFactory.parameterCount`. */
class ParamCounter implements ParamSink {
  total = 0;
  buffers = 0;
  add(_name: string, shape: number[], _values: () => Float32Array, options?: { buffer?: boolean }): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    if (options?.buffer) this.buffers += size;
    else this.total += size;
    // Never read: a counted model is not run.
    return undefined as unknown as tf.Variable;
  }
}

/** Trained weights only, as torchvision's figures count them (BatchNorm's running statistics are buffers). */
export function countParameters<P>(arch: Architecture<P>, numClasses: number): ParameterCount {
  const counter = new ParamCounter();
  arch.build(counter, numClasses, 0);
  return { total: counter.total, trainable: counter.total };
}

export function checkInputConfig(kind: string, c: InputConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(c.imageSize) || c.imageSize < 1) problems.push(`image_size must be a positive integer, got ${c.imageSize}`);
  if (c.inputMean.length !== c.channels || c.inputStd.length !== c.channels)
    problems.push(`input_mean and input_std need one value per channel (${c.channels})`);
  if (c.inputStd.some((v) => !(v > 0))) problems.push('input_std values must be positive');
  if (problems.length > 0) throw new Error(`${kind} options: ${problems.join('; ')}`);
}

/** A Backbone around an Architecture: weights, state, input checks and normalisation. */
export class ConvNet<P> implements Backbone {
  readonly kind: string;
  readonly imageSize: number;
  readonly channels: number;
  readonly featureDim: number;
  private readonly params: ParamSet;
  private readonly layers: P;
  private readonly noise: Stream;
  private disposed = false;

  constructor(
    private readonly arch: Architecture<P>,
    readonly input: InputConfig,
    readonly numClasses: number,
    readonly seed: number,
    trainable = true,
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`${arch.kind}: numClasses must be a positive integer, got ${numClasses}`);
    this.kind = arch.kind;
    this.imageSize = input.imageSize;
    this.channels = input.channels;
    this.featureDim = arch.featureDim;
    this.params = new ParamSet(arch.kind.replace(/[^A-Za-z0-9]/g, ''), trainable);
    const params = this.params;
    this.layers = arch.build({ add: (name, shape, values, options) => params.add(name, shape, values, options) }, numClasses, seed);
    this.noise = new Stream(streamKey(seed, 'noise'));
  }

  /** State of the dropout seed stream (save it with the weights to resume exactly). */
  get noiseState(): number {
    return this.noise.state;
  }
  set noiseState(value: number) {
    this.noise.state = value;
  }

  private run(options?: ForwardOptions): Run {
    return { training: !!options?.training, stream: this.noise };
  }

  /** [0, 1] images → the normalised input of the first layer. */
  normalise(images: tf.Tensor4D): tf.Tensor4D {
    const [, h, w, c] = images.shape;
    if (images.rank !== 4 || h !== this.imageSize || w !== this.imageSize || c !== this.channels) {
      throw new Error(`${this.kind}: expected images [B, ${this.imageSize}, ${this.imageSize}, ${this.channels}] (NHWC), got [${images.shape.join(', ')}]`);
    }
    return tf.tidy(() => tf.div(tf.sub(images, tf.tensor1d(this.input.inputMean as number[])), tf.tensor1d(this.input.inputStd as number[])) as tf.Tensor4D);
  }

  features(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => this.arch.features(this.layers, this.normalise(images), this.run(options)));
  }

  classify(features: tf.Tensor2D, options?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => this.arch.classify(this.layers, features, this.run(options)));
  }

  logits(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => this.classify(this.features(images, options), options));
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.params.entries();
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.entries()].filter(([name]) => !this.params.isBuffer(name)).map(([, v]) => v);
  }

  headVariables(): tf.Variable[] {
    return [...this.params.entries()].filter(([name]) => name.startsWith('head.')).map(([, v]) => v);
  }

  /** Biases and BatchNorm weights (rank ≤ 1) are not decayed, as timm exempts them. */
  noWeightDecay(name: string): boolean {
    const v = this.params.entries().get(name);
    return v !== undefined && v.shape.length <= 1;
  }

  state(): NamedTensors {
    return stateOf(this.params.entries());
  }

  loadState(record: NamedTensors, options?: LoadStateOptions): LoadStateReport {
    return loadInto(this.kind, this.params.entries(), record, options);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.params.dispose();
  }
}
