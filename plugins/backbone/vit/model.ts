import * as tf from '@tensorflow/tfjs';
import type {
  BuildOptions,
  ForwardOptions,
  LoadStateOptions,
  LoadStateReport,
  NamedTensors,
  TokenBackbone,
  TransformerStack,
  TransformerStackSpec,
} from '../../../src/contracts/backbone.ts';
import { numPatches, type VitConfig } from './config.ts';
import { normal, Stream, streamKey, truncatedNormal } from './init.ts';
import {
  addBlock,
  addLinear,
  addNorm,
  block,
  dropout,
  gelu,
  layerNorm,
  linear,
  sincos2d,
  type BlockParams,
  type BlockSettings,
  type GeluKind,
  type Linear,
  type Noise,
  type Norm,
} from './layers.ts';
import { loadInto, ParamSet, stateOf } from './params.ts';

/**
 * Initialisation follows MAE: every linear (patch embedding included) Xavier-uniform with zero
 * bias, LayerNorm weight 1 / bias 0, class token N(0, .02), a learned position embedding
 * N(0, .02) truncated at ±2 std, the fixed one 2-D sin-cos. The classifier weight is
 * Xavier-uniform unless `headInitStd` is set (MAE fine-tuning uses 2e-5).
 */

const NO_DECAY_NAMES = new Set(['cls_token', 'pos_embed']);

function noWeightDecayFor(vars: ReadonlyMap<string, tf.Variable>, name: string): boolean {
  const v = vars.get(name);
  return NO_DECAY_NAMES.has(name) || (v !== undefined && v.shape.length <= 1);
}

/** Runs 2-D blocks on [B, T, D] tokens and a final LayerNorm (blocks `from` … `to` − 1; the norm only after the last). */
function runBlocks(tokens: tf.Tensor3D, blocks: readonly BlockParams[], norm: Norm, s: BlockSettings, noise: Noise, from = 0, to = blocks.length): tf.Tensor3D {
  const [batch, t, d] = tokens.shape;
  let x = tf.reshape(tokens, [batch * t, d]) as tf.Tensor2D;
  for (let i = from; i < to; i++) {
    // Stochastic depth grows linearly with depth, as in timm.
    const rate = blocks.length > 1 ? (s.dropPath * i) / (blocks.length - 1) : s.dropPath;
    x = block(x, blocks[i]!, batch, s, rate, noise);
  }
  return tf.reshape(to === blocks.length ? layerNorm(x, norm) : x, [batch, t, d]) as tf.Tensor3D;
}

class Stack implements TransformerStack {
  private readonly params: ParamSet;
  private readonly blocks: BlockParams[] = [];
  private readonly norm: Norm;
  private readonly settings: BlockSettings;
  private readonly noise: Stream;

  constructor(
    readonly spec: TransformerStackSpec,
    seed: number,
    eps: number,
    geluKind: GeluKind,
    trainable: boolean,
  ) {
    if (spec.dim % spec.heads !== 0) throw new Error(`transformer stack: dim ${spec.dim} is not divisible by heads ${spec.heads}`);
    this.params = new ParamSet('stack', trainable);
    const mlpDim = Math.round(spec.dim * spec.mlpRatio);
    for (let i = 0; i < spec.depth; i++) this.blocks.push(addBlock(this.params, `blocks.${i}`, spec.dim, mlpDim, seed, eps, true));
    this.norm = addNorm(this.params, 'norm', spec.dim, eps);
    this.settings = { dim: spec.dim, heads: spec.heads, gelu: geluKind, dropout: 0, dropPath: 0 };
    this.noise = new Stream(streamKey(seed, 'noise'));
  }

  apply(tokens: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D {
    return tf.tidy(() => runBlocks(tokens, this.blocks, this.norm, this.settings, { training: !!options?.training, stream: this.noise }));
  }
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.params.entries();
  }
  state(): NamedTensors {
    return stateOf(this.params.entries());
  }
  loadState(record: NamedTensors, options?: LoadStateOptions): LoadStateReport {
    return loadInto('transformer stack', this.params.entries(), record, options);
  }
  dispose(): void {
    this.params.dispose();
  }
}

export class VisionTransformer implements TokenBackbone {
  readonly kind = 'vit';
  readonly imageSize: number;
  readonly channels: number;
  readonly dim: number;
  readonly featureDim: number;
  readonly patchSize: number;
  readonly gridSize: number;
  readonly numPatches: number;
  readonly patchDim: number;
  readonly hasClassToken: boolean;

  private readonly params: ParamSet;
  private readonly patchEmbed: Linear;
  private readonly clsToken: tf.Variable | null;
  /** [1, T, D] with T = numPatches (+1 for the class token); a fixed buffer unless trained (see the constructor). */
  private readonly posEmbed: tf.Variable<tf.Rank.R3>;
  private readonly blocks: BlockParams[] = [];
  private readonly norm: Norm;
  private readonly head: { fc1: Linear; fc2: Linear } | { fc: Linear };
  private readonly settings: BlockSettings;
  /** Seeds for dropout and stochastic depth; part of `noiseState` so a resumed run draws the same masks. */
  private readonly noise: Stream;
  private readonly trainable: boolean;
  private disposed = false;

  constructor(
    readonly config: VitConfig,
    readonly numClasses: number,
    readonly seed: number,
    build: BuildOptions = {},
  ) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`vit: numClasses must be a positive integer, got ${numClasses}`);
    const c = config;
    this.imageSize = c.imageSize;
    this.channels = c.channels;
    this.dim = c.dim;
    this.featureDim = c.dim;
    this.patchSize = c.patchSize;
    this.gridSize = c.imageSize / c.patchSize;
    this.numPatches = numPatches(c);
    this.patchDim = c.patchSize * c.patchSize * c.channels;
    this.hasClassToken = c.classToken;
    this.trainable = build.trainable ?? true;
    this.params = new ParamSet('vit', this.trainable);
    const p = this.params;

    this.patchEmbed = addLinear(p, 'patch_embed', this.patchDim, c.dim, seed);
    this.clsToken = c.classToken ? p.add('cls_token', [1, 1, c.dim], normal(new Stream(streamKey(seed, 'cls_token')), c.dim, 0.02)) : null;
    const tokens = this.numPatches + (c.classToken ? 1 : 0);
    const positions = (): Float32Array => {
      if (c.posEmbed === 'learned') return truncatedNormal(new Stream(streamKey(seed, 'pos_embed')), tokens * c.dim, 0.02);
      const values = new Float32Array(tokens * c.dim);
      values.set(sincos2d(c.dim, this.gridSize), c.classToken ? c.dim : 0); // the class token's row stays zero, as in MAE
      return values;
    };
    // Fine-tuning trains it from its start (timm's pos_embed, into which the authors load the MAE's
    // sin-cos values); MAE pre-training keeps a sin-cos one fixed (requires_grad=False in MAE).
    const fixed = !c.posEmbedTrainable || (c.posEmbed === 'sincos' && build.fixedSincosPositions === true);
    this.posEmbed = p.add('pos_embed', [1, tokens, c.dim], positions, { buffer: fixed }) as tf.Variable<tf.Rank.R3>;
    for (let i = 0; i < c.depth; i++) this.blocks.push(addBlock(p, `blocks.${i}`, c.dim, c.mlpDim, seed, c.layerNormEps, c.qkvBias));
    this.norm = addNorm(p, 'norm', c.dim, c.layerNormEps);
    const headInit = c.headInitStd === null ? undefined : (s: Stream, n: number) => truncatedNormal(s, n, c.headInitStd!);
    this.head =
      c.headHidden === 0
        ? { fc: addLinear(p, 'head', c.dim, numClasses, seed, { weightInit: headInit }) }
        : { fc1: addLinear(p, 'head.fc1', c.dim, c.headHidden, seed), fc2: addLinear(p, 'head.fc2', c.headHidden, numClasses, seed, { weightInit: headInit }) };
    this.settings = { dim: c.dim, heads: c.heads, gelu: c.gelu, dropout: c.dropout, dropPath: c.dropPath };
    this.noise = new Stream(streamKey(seed, 'noise'));
  }

  /** State of the dropout / stochastic-depth seed stream (save it with the weights to resume exactly). */
  get noiseState(): number {
    return this.noise.state;
  }
  set noiseState(value: number) {
    this.noise.state = value;
  }

  private noiseFor(options?: ForwardOptions): Noise {
    return { training: !!options?.training, stream: this.noise };
  }

  private checkImages(images: tf.Tensor4D): void {
    const [, h, w, ch] = images.shape;
    if (images.rank !== 4 || h !== this.imageSize || w !== this.imageSize || ch !== this.channels) {
      throw new Error(`vit: expected images [B, ${this.imageSize}, ${this.imageSize}, ${this.channels}] (NHWC), got [${images.shape.join(', ')}]`);
    }
  }

  patchify(images: tf.Tensor4D): tf.Tensor3D {
    this.checkImages(images);
    const b = images.shape[0];
    const g = this.gridSize;
    const p = this.patchSize;
    // Normalised here so every path into the encoder (and MAE's pixel targets) sees the same input.
    // [B·g, p, g, p·C] → [B·g, g, p, p·C]: one rank-4 transpose, which every backend has.
    return tf.tidy(() => {
      const normalised = tf.div(tf.sub(images, tf.tensor1d(this.config.inputMean as number[])), tf.tensor1d(this.config.inputStd as number[]));
      return tf.reshape(tf.transpose(tf.reshape(normalised, [b * g, p, g, p * this.channels]), [0, 2, 1, 3]), [b, g * g, this.patchDim]);
    }) as tf.Tensor3D;
  }

  unpatchify(patches: tf.Tensor3D): tf.Tensor4D {
    const [b, n, pd] = patches.shape;
    if (n !== this.numPatches || pd !== this.patchDim) {
      throw new Error(`vit: expected patches [B, ${this.numPatches}, ${this.patchDim}], got [${patches.shape.join(', ')}]`);
    }
    const g = this.gridSize;
    const p = this.patchSize;
    // The inverse of patchify, normalisation included, so reconstructions come back in [0, 1] units.
    return tf.tidy(() => {
      const images = tf.reshape(tf.transpose(tf.reshape(patches, [b * g, g, p, p * this.channels]), [0, 2, 1, 3]), [
        b,
        this.imageSize,
        this.imageSize,
        this.channels,
      ]);
      return tf.add(tf.mul(images, tf.tensor1d(this.config.inputStd as number[])), tf.tensor1d(this.config.inputMean as number[]));
    }) as tf.Tensor4D;
  }

  embed(patches: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D {
    const [b, n, pd] = patches.shape;
    if (n !== this.numPatches || pd !== this.patchDim) {
      throw new Error(`vit: expected patches [B, ${this.numPatches}, ${this.patchDim}], got [${patches.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const x = tf.reshape(linear(tf.reshape(patches, [b * n, pd]) as tf.Tensor2D, this.patchEmbed), [b, n, this.dim]);
      const pos = this.hasClassToken ? tf.slice(this.posEmbed, [0, 1, 0], [1, n, this.dim]) : this.posEmbed;
      return dropout(tf.add(x, pos), this.settings.dropout, this.noiseFor(options)) as tf.Tensor3D;
    });
  }

  withClassToken(tokens: tf.Tensor3D): tf.Tensor3D {
    if (!this.clsToken) return tokens;
    const b = tokens.shape[0];
    return tf.tidy(() => {
      const cls = tf.add(this.clsToken!, tf.slice(this.posEmbed, [0, 0, 0], [1, 1, this.dim]));
      // Broadcasting by addition keeps the gradient a plain sum (Tile's gradient slices per sample).
      return tf.concat([tf.add(tf.zeros([b, 1, this.dim]), cls), tokens], 1) as tf.Tensor3D;
    });
  }

  encode(tokens: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D {
    if (tokens.rank !== 3 || tokens.shape[2] !== this.dim) {
      throw new Error(`vit: expected tokens [B, T, ${this.dim}], got [${tokens.shape.join(', ')}]`);
    }
    return tf.tidy(() => runBlocks(tokens, this.blocks, this.norm, this.settings, this.noiseFor(options)));
  }

  get depth(): number {
    return this.blocks.length;
  }

  encodeRange(tokens: tf.Tensor3D, from: number, to: number, options?: ForwardOptions): tf.Tensor3D {
    if (tokens.rank !== 3 || tokens.shape[2] !== this.dim) {
      throw new Error(`vit: expected tokens [B, T, ${this.dim}], got [${tokens.shape.join(', ')}]`);
    }
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from <= to && to <= this.blocks.length)) {
      throw new Error(`vit: block range ${from}…${to} is not within 0…${this.blocks.length}`);
    }
    return tf.tidy(() => runBlocks(tokens, this.blocks, this.norm, this.settings, this.noiseFor(options), from, to));
  }

  /** Class token, or the mean of the normalised patch tokens (timm's 'avg' pooling). */
  pool(encoded: tf.Tensor3D): tf.Tensor2D {
    const [b, t, d] = encoded.shape;
    return tf.tidy(() => {
      if (this.config.pool === 'cls') return tf.reshape(tf.slice(encoded, [0, 0, 0], [b, 1, d]), [b, d]) as tf.Tensor2D;
      const start = this.hasClassToken ? 1 : 0;
      const patches = start === 0 ? encoded : tf.slice(encoded, [0, start, 0], [b, t - start, d]);
      return tf.mean(patches, 1) as tf.Tensor2D;
    });
  }

  features(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => this.pool(this.encode(this.withClassToken(this.embed(this.patchify(images), options)), options)));
  }

  classify(features: tf.Tensor2D, options?: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => {
      if ('fc' in this.head) return linear(features, this.head.fc);
      const hidden = dropout(gelu(linear(features, this.head.fc1), this.settings.gelu), this.settings.dropout, this.noiseFor(options));
      return linear(hidden, this.head.fc2);
    });
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

  noWeightDecay(name: string): boolean {
    return noWeightDecayFor(this.params.entries(), name);
  }

  /** timm's and BEiT's numbering: cls_token, pos_embed, patch_embed.* 0; blocks.i.* i + 1; the rest depth + 1. */
  layerOf(name: string): { layer: number; layers: number } {
    const layers = this.blocks.length + 1;
    if (name === 'cls_token' || name === 'pos_embed' || name.startsWith('patch_embed.')) return { layer: 0, layers };
    const block = /^blocks\.(\d+)\./.exec(name);
    return { layer: block ? Number(block[1]) + 1 : layers, layers };
  }

  state(): NamedTensors {
    return stateOf(this.params.entries());
  }

  loadState(record: NamedTensors, options?: LoadStateOptions): LoadStateReport {
    return loadInto('vit', this.params.entries(), record, options);
  }

  createStack(spec: TransformerStackSpec, seed: number): TransformerStack {
    return new Stack(spec, seed, this.config.layerNormEps, this.config.gelu, this.trainable);
  }

  sincosPositionEmbedding(dim: number): tf.Tensor2D {
    const grid = sincos2d(dim, this.gridSize);
    if (!this.hasClassToken) return tf.tensor2d(grid, [this.numPatches, dim]);
    const values = new Float32Array((this.numPatches + 1) * dim);
    values.set(grid, dim);
    return tf.tensor2d(values, [this.numPatches + 1, dim]);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.params.dispose();
  }
}
