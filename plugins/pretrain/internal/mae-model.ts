import * as tf from '@tensorflow/tfjs';
import type { ForwardOptions, TokenBackbone, TransformerStack } from '../../../src/contracts/backbone.ts';
import { Rng } from '../../../src/core/rng.ts';

/** Decoder sizes of the MAE code: Base/Large 512/8/16, Small 192/1/6, Tiny (and anything narrower) 96/1/3. */
export function defaultDecoder(encoderDim: number): { dim: number; depth: number; heads: number } {
  if (encoderDim >= 768) return { dim: 512, depth: 8, heads: 16 };
  if (encoderDim >= 384) return { dim: 192, depth: 1, heads: 6 };
  return { dim: 96, depth: 1, heads: 3 };
}

/**
 * The decoder size from the options, null fields from the backbone width. When only the width is
 * given, the preset's head count is lowered to the nearest one that divides it.
 */
export function decoderSpec(
  encoderDim: number,
  o: { dim: number | null; depth: number | null; heads: number | null },
): { dim: number; depth: number; heads: number } {
  const preset = defaultDecoder(encoderDim);
  const dim = o.dim ?? preset.dim;
  let heads = o.heads ?? preset.heads;
  if (o.heads === null) while (dim % heads !== 0) heads--;
  return { dim, depth: o.depth ?? preset.depth, heads };
}

/** A batch's random masking: which patches each sample keeps (ascending) and which are masked. */
export interface Masking {
  readonly batch: number;
  readonly numPatches: number;
  /** Patches kept per sample. */
  readonly keep: number;
  /** [batch·keep] patch indices kept, ascending within a sample. */
  readonly kept: Int32Array;
  /** [batch·numPatches] 1 where the patch is masked (a loss target), 0 where the encoder sees it. */
  readonly mask: Float32Array;
}

/** Patches kept at a mask ratio: round(N·(1 − r)), at least one. */
export function keptCount(numPatches: number, maskRatio: number): number {
  return Math.min(numPatches, Math.max(1, Math.round(numPatches * (1 - maskRatio))));
}

/** Per-sample uniform masking (MAE's shuffle by noise): each sample keeps its own random subset. */
export function randomMasking(batch: number, numPatches: number, maskRatio: number, rng: Rng): Masking {
  const keep = keptCount(numPatches, maskRatio);
  const kept = new Int32Array(batch * keep);
  const mask = new Float32Array(batch * numPatches).fill(1);
  const order = new Int32Array(numPatches);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < numPatches; i++) order[i] = i;
    rng.shuffle(order);
    const chosen = Array.from(order.subarray(0, keep)).sort((a, c) => a - c);
    chosen.forEach((p, j) => {
      kept[b * keep + j] = p;
      mask[b * numPatches + p] = 0;
    });
  }
  return { batch, numPatches, keep, kept, mask };
}

/**
 * Reconstruction targets from patches [B, N, P]: the patches themselves, or with `normPix` each
 * patch normalised by its own mean and variance as MAE does (torch's var is the unbiased one).
 */
export function patchTargets(patches: tf.Tensor3D, normPix: boolean): tf.Tensor3D {
  if (!normPix) return tf.clone(patches);
  return tf.tidy(() => {
    const { mean, std } = patchStats(patches);
    return tf.div(tf.sub(patches, mean), std) as tf.Tensor3D;
  });
}

/** Per-patch mean and √(unbiased var + 1e-6), each [B, N, 1]. */
export function patchStats(patches: tf.Tensor3D): { mean: tf.Tensor3D; std: tf.Tensor3D } {
  return tf.tidy(() => {
    const p = patches.shape[2];
    const mean = tf.mean(patches, -1, true) as tf.Tensor3D;
    const sq = tf.sum(tf.square(tf.sub(patches, mean)), -1, true);
    const variance = tf.div(sq, Math.max(1, p - 1));
    return { mean, std: tf.sqrt(tf.add(variance, 1e-6)) as tf.Tensor3D };
  });
}

/** Mean over masked patches of the per-patch mean squared error: Σ mask·mean_P (pred − target)² / Σ mask. */
export function maskedMse(pred: tf.Tensor3D, target: tf.Tensor3D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const perPatch = tf.mean(tf.square(tf.sub(pred, target)), -1);
    return tf.div(tf.sum(tf.mul(perPatch, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/**
 * Rows of a [R, D] table by index, with the gradient as a scatter-add. tfjs's own gather gradient
 * (UnsortedSegmentSum) costs R passes over the whole gradient on the JS cpu backend, which made
 * it most of an MAE step; ScatterNd sums duplicate rows in one pass.
 */
export function gatherRows(table: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [r, d] = table.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = [args[0] as tf.Tensor2D, args[1] as tf.GradSaveFunc];
    const scatterIndex = tf.tensor2d(rows, [rows.length, 1], 'int32');
    // Saved tensors outlive the forward pass's scope; the gradient runs after it.
    save([scatterIndex]);
    return {
      value: tf.gather(x, tf.reshape(scatterIndex, [rows.length])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0]!, dy, [r, d]),
    };
  });
  return op(table) as tf.Tensor2D;
}

function xavierUniform(rng: Rng, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: fanIn * fanOut }, () => rng.uniform(-limit, limit));
}

/**
 * The MAE around a token backbone: the encoder sees only the kept patches (and the class token),
 * a light decoder (a transformer stack of the backbone's kind) sees the encoded patches back in
 * place with a shared learned mask token elsewhere, and a linear layer predicts every patch's pixels.
 */
export class MaskedAutoencoder {
  readonly decoder: TransformerStack;
  private readonly embedWeight: tf.Variable;
  private readonly embedBias: tf.Variable;
  private readonly maskToken: tf.Variable;
  private readonly predWeight: tf.Variable;
  private readonly predBias: tf.Variable;
  /** Fixed sin-cos position embedding of the decoder: [1, T, decoderDim]. */
  private readonly decoderPos: tf.Tensor3D;
  private readonly own: Map<string, tf.Variable>;

  constructor(
    readonly encoder: TokenBackbone,
    readonly spec: { dim: number; depth: number; heads: number },
    readonly normPix: boolean,
    seed: number,
  ) {
    const d = spec.dim;
    if (d % spec.heads !== 0) throw new Error(`mae: decoder dim ${d} is not divisible by decoder heads ${spec.heads}`);
    if (d % 4 !== 0) throw new Error(`mae: decoder dim ${d} must be divisible by 4 for its sin-cos position embedding`);
    this.decoder = encoder.createStack({ dim: d, depth: spec.depth, heads: spec.heads, mlpRatio: 4 }, Rng.derive(seed, 'decoder').seed());
    const e = encoder.dim;
    const p = encoder.patchDim;
    // Created inside tidy so the initial values' own handles are released; the variables keep the data.
    const made = tf.tidy(() => {
      const tokenRng = Rng.derive(seed, 'mask_token');
      return {
        embedWeight: tf.variable(tf.tensor2d(xavierUniform(Rng.derive(seed, 'decoder_embed'), e, d), [e, d]), true),
        embedBias: tf.variable(tf.zeros([d]), true),
        maskToken: tf.variable(
          tf.tensor2d(
            Float32Array.from({ length: d }, () => tokenRng.gauss(0, 0.02)),
            [1, d],
          ),
          true,
        ),
        predWeight: tf.variable(tf.tensor2d(xavierUniform(Rng.derive(seed, 'decoder_pred'), d, p), [d, p]), true),
        predBias: tf.variable(tf.zeros([p]), true),
      };
    });
    this.embedWeight = made.embedWeight;
    this.embedBias = made.embedBias;
    this.maskToken = made.maskToken;
    this.predWeight = made.predWeight;
    this.predBias = made.predBias;
    this.decoderPos = tf.tidy(() => tf.expandDims(encoder.sincosPositionEmbedding(d), 0) as tf.Tensor3D);
    this.own = new Map<string, tf.Variable>([
      ['decoder_embed.weight', this.embedWeight],
      ['decoder_embed.bias', this.embedBias],
      ['mask_token', this.maskToken],
      ['decoder_pred.weight', this.predWeight],
      ['decoder_pred.bias', this.predBias],
    ]);
  }

  /** The decoder side's trainable weights (stack weights under 'decoder.'), for the optimizer. */
  decoderVariables(): Map<string, tf.Variable> {
    const out = new Map(this.own);
    for (const [name, v] of this.decoder.namedVariables()) out.set(`decoder.${name}`, v);
    return out;
  }

  /** Encoder weights the pre-training updates: everything trainable except the classifier. */
  encoderVariables(): Map<string, tf.Variable> {
    return new Map([...this.encoder.namedVariables()].filter(([name, v]) => v.trainable && !name.startsWith('head.')));
  }

  /**
   * Forward pass on images [B, H, W, C] with a masking: predictions and targets for every patch
   * [B, N, P] and the mask [B, N] (1 = masked) as a tensor.
   */
  forward(images: tf.Tensor4D, m: Masking, options?: ForwardOptions): { pred: tf.Tensor3D; target: tf.Tensor3D; mask: tf.Tensor2D; patches: tf.Tensor3D } {
    const enc = this.encoder;
    const { batch: b, numPatches: n, keep: k } = m;
    if (images.shape[0] !== b || enc.numPatches !== n)
      throw new Error(`mae: masking is for ${b}×${n} patches, images give ${images.shape[0]}×${enc.numPatches}`);
    return tf.tidy(() => {
      const patches = enc.patchify(images);
      const tokens = enc.embed(patches, options);
      const flatKept = new Int32Array(b * k);
      for (let i = 0; i < b * k; i++) flatKept[i] = Math.floor(i / k) * n + m.kept[i]!;
      const visible = tf.reshape(gatherRows(tf.reshape(tokens, [b * n, enc.dim]) as tf.Tensor2D, flatKept), [b, k, enc.dim]) as tf.Tensor3D;
      const encoded = enc.encode(enc.withClassToken(visible), options);
      const t = encoded.shape[1];
      const c = t - k; // 1 with a class token, 0 without
      const d = this.spec.dim;
      const y = tf.reshape(tf.add(tf.matMul(tf.reshape(encoded, [b * t, enc.dim]), this.embedWeight), this.embedBias), [b, t, d]);
      // Un-shuffle: each position takes its encoded token when kept, the mask token otherwise.
      const table = tf.concat([tf.reshape(tf.slice(y, [0, c, 0], [b, k, d]), [b * k, d]), this.maskToken], 0) as tf.Tensor2D;
      const restore = new Int32Array(b * n).fill(b * k);
      for (let i = 0; i < b * k; i++) restore[Math.floor(i / k) * n + m.kept[i]!] = i;
      const full = tf.reshape(gatherRows(table, restore), [b, n, d]);
      const seq = c > 0 ? tf.concat([tf.slice(y, [0, 0, 0], [b, c, d]), full], 1) : full;
      const decoded = this.decoder.apply(tf.add(seq, this.decoderPos) as tf.Tensor3D, options);
      const patchOut = tf.reshape(tf.slice(decoded, [0, c, 0], [b, n, d]), [b * n, d]);
      const pred = tf.reshape(tf.add(tf.matMul(patchOut, this.predWeight), this.predBias), [b, n, enc.patchDim]) as tf.Tensor3D;
      return { pred, target: patchTargets(patches, this.normPix), mask: tf.tensor2d(m.mask, [b, n]), patches };
    });
  }

  loss(images: tf.Tensor4D, m: Masking, options?: ForwardOptions): tf.Scalar {
    return tf.tidy(() => {
      const out = this.forward(images, m, options);
      return maskedMse(out.pred, out.target, out.mask);
    });
  }

  /**
   * Images for the picture: the masked input (masked patches grey) and the reconstruction with
   * the visible patches pasted back, both [B, H, W, C] in [0, 1] units (predictions un-normalised
   * with each patch's own statistics when the targets are normalised, as the MAE demo does).
   */
  reconstruct(images: tf.Tensor4D, m: Masking): { masked: tf.Tensor4D; reconstruction: tf.Tensor4D } {
    const enc = this.encoder;
    return tf.tidy(() => {
      const out = this.forward(images, m);
      let pred: tf.Tensor3D = out.pred;
      if (this.normPix) {
        const { mean, std } = patchStats(out.patches);
        pred = tf.add(tf.mul(pred, std), mean) as tf.Tensor3D;
      }
      const maskB = tf.expandDims(out.mask, 2);
      const visible = tf.sub(1, maskB);
      const pasted = tf.add(tf.mul(out.patches, visible), tf.mul(pred, maskB)) as tf.Tensor3D;
      const greyPatches = enc.patchify(tf.fill(images.shape, 0.5) as tf.Tensor4D);
      const masked = tf.add(tf.mul(out.patches, visible), tf.mul(greyPatches, maskB)) as tf.Tensor3D;
      return {
        masked: tf.clipByValue(enc.unpatchify(masked), 0, 1) as tf.Tensor4D,
        reconstruction: tf.clipByValue(enc.unpatchify(pasted), 0, 1) as tf.Tensor4D,
      };
    });
  }

  dispose(): void {
    this.decoder.dispose();
    for (const v of this.own.values()) v.dispose();
    this.decoderPos.dispose();
  }
}
