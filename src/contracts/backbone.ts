import type { OnnxGraph } from '../onnx/proto.ts';
import type * as tf from '@tensorflow/tfjs';

/**
 * Named tensors: a model's weights, an optimizer's moments, a checkpoint's content.
 * Every `state()` in the project returns fresh handles (tf.clone shares the data, so this
 * costs no copy): the caller owns them and disposes them.
 */
export type NamedTensors = Record<string, tf.Tensor>;

export interface LoadStateOptions {
  /**
   * Weights the record may lack; they keep their current values. Exact names, or prefixes ending
   * in '.' (e.g. 'head.' when a pre-trained encoder is loaded under a new classifier).
   */
  readonly allowMissing?: readonly string[] | ((name: string) => boolean);
  /** Ignore names in the record that the module does not have instead of failing. */
  readonly ignoreUnexpected?: boolean;
}

export interface LoadStateReport {
  readonly loaded: readonly string[];
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
}

export interface ForwardOptions {
  /** Enables dropout and stochastic depth. Default false. */
  readonly training?: boolean;
}

/** Anything that owns named weights. */
export interface ParamModule {
  /** Weights by stable name ('blocks.0.attn.qkv.weight'); the map's order is the creation order. */
  namedVariables(): ReadonlyMap<string, tf.Variable>;
  /** Clones of every weight, by name; the caller disposes them. */
  state(): NamedTensors;
  /**
   * Assigns weights from a record (the record stays the caller's). Every name and shape is
   * checked before anything is assigned, so a failed load leaves the module unchanged.
   */
  loadState(record: NamedTensors, options?: LoadStateOptions): LoadStateReport;
  dispose(): void;
}

/** An image classifier: NHWC float32 images in → features and class logits out. */
export interface Backbone extends ParamModule {
  /** The plugin that built it ('vit'). */
  readonly kind: string;
  readonly numClasses: number;
  /** Width of `features`. */
  readonly featureDim: number;
  /** Height = width of the images it takes. */
  readonly imageSize: number;
  readonly channels: number;
  /** Pooled representation before the classifier: [B, featureDim]. */
  features(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D;
  /** Class scores before softmax: [B, numClasses]. */
  logits(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D;
  /** The classifier alone, from `features`: [B, numClasses]. */
  classify(features: tf.Tensor2D, options?: ForwardOptions): tf.Tensor2D;
  /** Weights the optimizer updates (all but fixed buffers). */
  trainableVariables(): tf.Variable[];
  /** The classifier's weights (subset of trainableVariables). */
  headVariables(): tf.Variable[];
  /** Whether decoupled weight decay should skip this weight (biases, norms, tokens, positions). */
  noWeightDecay(name: string): boolean;
  /**
   * Where a weight sits for layer-wise learning-rate decay (BEiT, MAE fine-tuning): `layer` 0 for
   * the embeddings, i + 1 for block i, `layers` for what follows the last block (norm, head).
   * Optional: a backbone without it refuses a stage's layer_decay below 1.
   */
  layerOf?(name: string): { readonly layer: number; readonly layers: number };
}

/** Sizes of a stack of pre-norm transformer blocks followed by a LayerNorm. */
export interface TransformerStackSpec {
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpRatio: number;
}

/** Transformer blocks + final LayerNorm, e.g. the MAE decoder; weights named like the encoder's. */
export interface TransformerStack extends ParamModule {
  readonly spec: TransformerStackSpec;
  /** [B, T, dim] → [B, T, dim]. */
  apply(tokens: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D;
}

/**
 * A backbone that works on patch tokens (a ViT). The steps of `features` are exposed one by one
 * so masked-image pre-training can drop tokens between them:
 * patchify → embed → (mask) → withClassToken → encode → pool → classify.
 */
export interface TokenBackbone extends Backbone {
  /** Token width. */
  readonly dim: number;
  readonly patchSize: number;
  /** Patches per side (imageSize / patchSize). */
  readonly gridSize: number;
  readonly numPatches: number;
  /** Values per patch: patchSize² · channels, ordered (row, column, channel) as in MAE. */
  readonly patchDim: number;
  readonly hasClassToken: boolean;
  /** [B, H, W, C] → [B, numPatches, patchDim], patches in row-major grid order. */
  patchify(images: tf.Tensor4D): tf.Tensor3D;
  /** Inverse of patchify. */
  unpatchify(patches: tf.Tensor3D): tf.Tensor4D;
  /** Linear patch embedding plus the patches' position embedding: [B, N, P] → [B, N, dim]. */
  embed(patches: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D;
  /** Prepends the class token (with its position embedding); identity when there is none. */
  withClassToken(tokens: tf.Tensor3D): tf.Tensor3D;
  /** Transformer blocks + final LayerNorm: [B, T, dim] → [B, T, dim]. */
  encode(tokens: tf.Tensor3D, options?: ForwardOptions): tf.Tensor3D;
  /** Number of transformer blocks. */
  readonly depth: number;
  /**
   * Blocks `from` … `to` − 1 alone, followed by the final LayerNorm when `to` is the depth:
   * encode(t) = encodeRange(encodeRange(t, 0, k), k, depth). For looking inside (Grad-CAM).
   */
  encodeRange(tokens: tf.Tensor3D, from: number, to: number, options?: ForwardOptions): tf.Tensor3D;
  /** Encoded tokens → [B, dim] (class token, or mean of the patch tokens). */
  pool(encoded: tf.Tensor3D): tf.Tensor2D;
  /** A new stack of the same kind of blocks with its own weights, initialised from `seed`. */
  createStack(spec: TransformerStackSpec, seed: number): TransformerStack;
  /**
   * Fixed 2-D sin-cos position embedding for this grid at another width (MAE's decoder):
   * [numPatches (+1 zero row first when there is a class token), dim].
   */
  sincosPositionEmbedding(dim: number): tf.Tensor2D;
}

export interface BuildOptions {
  /** False for a teacher / EMA copy that gradients must never reach. Default true. */
  readonly trainable?: boolean;
  /**
   * Keep a sin-cos position embedding fixed (MAE pre-training: its code sets requires_grad=False);
   * fine-tuning trains it. A backbone without one ignores this.
   */
  readonly fixedSincosPositions?: boolean;
}

export interface ParameterCount {
  /** Every weight, fixed buffers (a fixed position embedding, BatchNorm statistics) included, as timm counts them. */
  readonly total: number;
  /** What the optimizer updates. */
  readonly trainable: number;
}

/**
 * What a `backbone` plugin creates: a description that builds models once the number of classes
 * is known.
 */
export interface BackboneFactory<B extends Backbone = Backbone> {
  readonly name: string;
  /** The resolved configuration (for run keys and reports). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly imageSize: number;
  /** `seed` defaults to the plugin context's seed. */
  build(numClasses: number, seed?: number, options?: BuildOptions): B;
  /** Analytic, without allocating anything. */
  parameterCount(numClasses: number): ParameterCount;
  /**
   * The model's inference graph in ONNX operators (input `images`: NHWC pixels in [0, 1];
   * output `logits`), for `ssfer export`; a backbone without it does not export.
   */
  onnxGraph?(model: B): OnnxGraph;
}

export function isTokenBackbone(backbone: Backbone): backbone is TokenBackbone {
  const b = backbone as Partial<TokenBackbone>;
  return typeof b.patchify === 'function' && typeof b.encode === 'function' && typeof b.embed === 'function';
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    backbone: BackboneFactory;
  }
}
