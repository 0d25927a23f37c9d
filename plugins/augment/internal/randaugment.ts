import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../../src/core/rng.ts';

/**
 * RandAugment (Cubuk et al.) with timm's argument mappings, on NHWC float images in [0, 1].
 * Everything is built from kernels every backend has (gather, elementwise, reductions, cumsum,
 * denseBincount, depthwise convolution): tf.image.transform is avoided because the JS cpu
 * kernel returns after the first image of a batch (tfjs 4.22), which the `native` backend inherits.
 */

/** Every operation either list draws from. */
export const ALL_OPS = [
  'Identity',
  'Invert',
  'SolarizeAdd',
  'AutoContrast',
  'Equalize',
  'Rotate',
  'Solarize',
  'Color',
  'Posterize',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
] as const;
export type RandOp = (typeof ALL_OPS)[number];

/** The 14 operations of the RandAugment paper (torchvision's list). */
export const RAND_OPS: readonly RandOp[] = ALL_OPS.filter((op) => op !== 'Invert' && op !== 'SolarizeAdd');

/**
 * timm's RandAugment list (_RAND_INCREASING_TRANSFORMS for `inc1`, _RAND_TRANSFORMS otherwise;
 * the increasing variants are the `increasing` setting), in timm's order: no Identity, with
 * Invert and SolarizeAdd; TranslateX/Y are timm's TranslateXRel/YRel (a share of the side).
 */
export const TIMM_OPS: readonly RandOp[] = [
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'Posterize',
  'Solarize',
  'SolarizeAdd',
  'Color',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
];

/** The operation lists RandAugment can draw from, by name. */
export const OP_SETS = { timm: TIMM_OPS, torchvision: RAND_OPS } as const;

const GEOMETRIC = new Set<RandOp>(['Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY']);
export const isGeometric = (op: RandOp): boolean => GEOMETRIC.has(op);

export interface RandAugmentSettings {
  /** Operations drawn per image (with replacement, as timm). */
  readonly ops: number;
  /** The list they are drawn from, uniformly (default: timm's). */
  readonly opSet?: keyof typeof OP_SETS;
  readonly magnitude: number;
  /** Gaussian noise on the magnitude per image and operation. */
  readonly magnitudeStd: number;
  /** Magnitude at which an operation reaches its full strength; the noisy magnitude is clipped to [0, this]. */
  readonly magnitudeMax: number;
  /** Probability that a drawn operation is applied (timm: 0.5). */
  readonly prob: number;
  /** timm's "increasing" variants: every operation gets stronger as the magnitude grows. */
  readonly increasing: boolean;
  /** Largest translation as a share of the image side (timm: 0.45). */
  readonly translate: number;
  /** Per-channel colour of pixels a geometric operation uncovers. */
  readonly fill: readonly number[];
}

/**
 * The argument of `op` at `level` (clipped magnitude) with a random `sign` (±1), as timm's
 * *_level_to_arg functions give it: degrees for Rotate, shear factor, translation as a share of
 * the side, threshold on the 0–256 scale for Solarize, bits kept for Posterize, enhancement factor
 * for Color / Contrast / Brightness / Sharpness; 0 for the operations without one.
 */
export function opArgument(op: RandOp, level: number, sign: number, s: Pick<RandAugmentSettings, 'magnitudeMax' | 'increasing' | 'translate'>): number {
  const f = s.magnitudeMax > 0 ? Math.min(1, Math.max(0, level / s.magnitudeMax)) : 0;
  switch (op) {
    case 'Rotate':
      return 30 * f * sign;
    case 'ShearX':
    case 'ShearY':
      return 0.3 * f * sign;
    case 'TranslateX':
    case 'TranslateY':
      return s.translate * f * sign;
    case 'SolarizeAdd':
      // timm's _solarize_add_level_to_arg: min(128, int(level / 10 · 110)), added to values below 128.
      return Math.min(128, Math.trunc(f * 110));
    case 'Solarize':
      return s.increasing ? 256 - Math.floor(f * 256) : Math.floor(f * 256);
    case 'Posterize':
      return s.increasing ? 4 - Math.floor(f * 4) : Math.floor(f * 4) + 4;
    case 'Color':
    case 'Contrast':
    case 'Brightness':
    case 'Sharpness':
      return s.increasing ? Math.max(0.1, 1 + 0.9 * f * sign) : 1.8 * f + 0.1;
    default:
      return 0;
  }
}

/** 2×3 matrix [a0, a1, a2, b0, b1, b2] mapping an output pixel (x, y) to the input point it samples, in pixel-index coordinates. */
export type Affine = readonly [number, number, number, number, number, number];

/** The sampling matrix of a geometric operation on an h×w image (PIL's conventions, as timm uses them). */
export function affineOf(op: RandOp, arg: number, h: number, w: number): Affine {
  switch (op) {
    case 'Rotate': {
      // PIL rotates counter-clockwise about the centre for a positive angle.
      const t = (arg * Math.PI) / 180;
      const c = Math.cos(t);
      const s = Math.sin(t);
      const cx = (w - 1) / 2;
      const cy = (h - 1) / 2;
      return [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy];
    }
    case 'ShearX':
      return [1, arg, 0, 0, 1, 0];
    case 'ShearY':
      return [1, 0, 0, arg, 1, 0];
    case 'TranslateX':
      return [1, 0, arg * w, 0, 1, 0];
    case 'TranslateY':
      return [1, 0, 0, 0, 1, arg * h];
    default:
      return [1, 0, 0, 0, 1, 0];
  }
}

/**
 * Bilinear resampling of each image by its own matrix; samples outside the image take `fill`.
 * The neighbour indices and weights are computed in JS, the pixels moved by one gather.
 */
export function warpAffine(images: tf.Tensor4D, matrices: readonly Affine[], fill: readonly number[]): tf.Tensor4D {
  const [n, h, w, c] = images.shape;
  const outside = n * h * w;
  const idx = new Int32Array(n * h * w * 4);
  const wts = new Float32Array(n * h * w * 4);
  for (let b = 0; b < n; b++) {
    const [a0, a1, a2, b0, b1, b2] = matrices[b]!;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const sx = a0 * x + a1 * y + a2;
        const sy = b0 * x + b1 * y + b2;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        const o = ((b * h + y) * w + x) * 4;
        // The four neighbours (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1), without an
        // array per pixel: this loop runs for every pixel of every strong view.
        const inX0 = x0 >= 0 && x0 < w;
        const inX1 = x0 + 1 >= 0 && x0 + 1 < w;
        const inY0 = y0 >= 0 && y0 < h;
        const inY1 = y0 + 1 >= 0 && y0 + 1 < h;
        const row0 = (b * h + y0) * w;
        const row1 = (b * h + y0 + 1) * w;
        idx[o] = inX0 && inY0 ? row0 + x0 : outside;
        idx[o + 1] = inX1 && inY0 ? row0 + x0 + 1 : outside;
        idx[o + 2] = inX0 && inY1 ? row1 + x0 : outside;
        idx[o + 3] = inX1 && inY1 ? row1 + x0 + 1 : outside;
        wts[o] = (1 - fx) * (1 - fy);
        wts[o + 1] = fx * (1 - fy);
        wts[o + 2] = (1 - fx) * fy;
        wts[o + 3] = fx * fy;
      }
    }
  }
  return tf.tidy(() => {
    const fillRow = tf.tensor2d(channelValues(fill, c), [1, c]);
    const table = tf.concat([tf.reshape(images, [outside, c]), fillRow], 0);
    const picked = tf.reshape(tf.gather(table, tf.tensor1d(idx, 'int32')), [outside, 4, c]);
    return tf.reshape(tf.sum(tf.mul(picked, tf.tensor3d(wts, [outside, 4, 1])), 1), [n, h, w, c]) as tf.Tensor4D;
  });
}

function channelValues(fill: readonly number[], c: number): number[] {
  if (fill.length === c) return [...fill];
  const mean = fill.reduce((a, v) => a + v, 0) / Math.max(1, fill.length);
  return Array.from({ length: c }, () => mean);
}

/** Where a box (x1, y1, x2, y2 in pixel-edge units) goes under a sampling matrix: the bounding box of its moved corners, clipped to the image. */
export function moveBox(box: readonly number[], m: Affine, h: number, w: number): [number, number, number, number] {
  const [a0, a1, a2, b0, b1, b2] = m;
  const det = a0 * b1 - a1 * b0;
  // Forward map = inverse of the sampling map; edge coordinates are index coordinates + ½.
  const fwd = (ex: number, ey: number): [number, number] => {
    const dx = ex - 0.5 - a2;
    const dy = ey - 0.5 - b2;
    return [(b1 * dx - a1 * dy) / det + 0.5, (-b0 * dx + a0 * dy) / det + 0.5];
  };
  const [x1, y1, x2, y2] = box as [number, number, number, number];
  const pts = [fwd(x1, y1), fwd(x2, y1), fwd(x1, y2), fwd(x2, y2)];
  const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  return [
    clip(Math.min(...pts.map((p) => p[0])), w),
    clip(Math.min(...pts.map((p) => p[1])), h),
    clip(Math.max(...pts.map((p) => p[0])), w),
    clip(Math.max(...pts.map((p) => p[1])), h),
  ];
}

const perImage = (args: readonly number[]) => tf.tensor4d(Float32Array.from(args), [args.length, 1, 1, 1]);

/** ITU-R 601-2 luma, as PIL's convert('L'); [N, H, W, 1]. */
function luma(x: tf.Tensor4D): tf.Tensor4D {
  const c = x.shape[3];
  if (c !== 3) return tf.mean(x, 3, true) as tf.Tensor4D;
  return tf.sum(tf.mul(x, tf.tensor1d([0.299, 0.587, 0.114])), 3, true) as tf.Tensor4D;
}

/** PIL's ImageEnhance: degenerate + factor·(image − degenerate), clipped. */
function blend(degenerate: tf.Tensor, x: tf.Tensor4D, factor: tf.Tensor4D): tf.Tensor4D {
  return tf.clipByValue(tf.add(degenerate, tf.mul(factor, tf.sub(x, degenerate))), 0, 1) as tf.Tensor4D;
}

function autoContrast(x: tf.Tensor4D): tf.Tensor4D {
  const lo = tf.min(x, [1, 2], true);
  const hi = tf.max(x, [1, 2], true);
  const spread = tf.greater(hi, lo);
  const range = tf.where(spread, tf.sub(hi, lo), tf.onesLike(hi));
  return tf.where(tf.broadcastTo(spread, x.shape), tf.div(tf.sub(x, lo), range), x) as tf.Tensor4D;
}

/** PIL's ImageOps.equalize per channel: a 256-bin histogram, the cumulative counts spread over the range. */
function equalize(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const rows = n * c;
  const q = tf.reshape(tf.transpose(tf.cast(tf.round(tf.mul(tf.clipByValue(x, 0, 1), 255)), 'int32'), [0, 3, 1, 2]), [rows, h * w]) as tf.Tensor2D;
  const hist = tf.denseBincount(q, [], 256) as tf.Tensor2D;
  // PIL: step = (count − count of the highest occupied bin) // 255; lut[i] = (step//2 + Σ_{j<i} h_j) // step.
  const top = tf.sum(tf.mul(hist, tf.oneHot(tf.max(q, 1), 256)), 1, true);
  const step = tf.floor(tf.div(tf.sub(h * w, top), 255));
  const safeStep = tf.maximum(step, 1);
  const lut = tf.minimum(tf.floor(tf.div(tf.add(tf.floor(tf.div(step, 2)), tf.cumsum(hist, 1, true)), safeStep)), 255);
  const flat = tf.add(q, tf.range(0, rows * 256, 256, 'int32').reshape([rows, 1]));
  const mapped = tf.div(tf.gather(tf.reshape(lut, [rows * 256]), tf.reshape(flat, [rows * h * w])), 255);
  const out = tf.transpose(tf.reshape(mapped, [n, c, h, w]), [0, 2, 3, 1]);
  const flatStep = tf.transpose(tf.reshape(tf.greater(step, 0), [n, c, 1, 1]), [0, 2, 3, 1]);
  return tf.where(tf.broadcastTo(flatStep, x.shape), out, x) as tf.Tensor4D;
}

/** PIL's SMOOTH filter (3×3, centre 5, total 13) with the one-pixel border left as it is. */
function smooth(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w, c] = x.shape;
  if (h < 3 || w < 3) return x;
  const k = [1, 1, 1, 1, 5, 1, 1, 1, 1].map((v) => v / 13);
  const kernel = tf.tensor4d(
    Float32Array.from({ length: 9 * c }, (_, i) => k[Math.floor(i / c)]!),
    [3, 3, c, 1],
  );
  const blurred = tf.depthwiseConv2d(x, kernel, 1, 'same');
  const inner = new Float32Array(h * w);
  for (let y = 1; y < h - 1; y++) for (let i = 1; i < w - 1; i++) inner[y * w + i] = 1;
  const mask = tf.tensor4d(inner, [1, h, w, 1]);
  return tf.add(tf.mul(blurred, mask), tf.mul(x, tf.sub(1, mask))) as tf.Tensor4D;
}

/**
 * One colour operation on a group of images with one argument per image (see opArgument).
 * Geometric operations go through warpAffine instead.
 */
export function colourOp(op: RandOp, x: tf.Tensor4D, args: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => {
    switch (op) {
      case 'Identity':
        return tf.clone(x);
      case 'AutoContrast':
        return autoContrast(x);
      case 'Equalize':
        return equalize(x);
      case 'Invert':
        return tf.sub(1, x) as tf.Tensor4D;
      case 'SolarizeAdd': {
        // PIL's lookup table: v < 128 → min(255, v + add), the rest unchanged (timm's solarize_add).
        const v = tf.round(tf.mul(x, 255));
        return tf.where(tf.less(v, 128), tf.minimum(1, tf.add(x, tf.div(perImage(args), 255))), x) as tf.Tensor4D;
      }
      case 'Solarize': {
        // PIL compares 8-bit values with the threshold; a threshold of 256 changes nothing.
        const v = tf.round(tf.mul(x, 255));
        return tf.where(tf.greaterEqual(v, perImage(args)), tf.sub(1, x), x) as tf.Tensor4D;
      }
      case 'Posterize': {
        const bits = args.map((b) => Math.max(0, Math.min(8, Math.round(b))));
        const step = perImage(bits.map((b) => 2 ** (8 - b)));
        const v = tf.round(tf.mul(x, 255));
        const kept = tf.div(tf.mul(tf.floor(tf.div(v, step)), step), 255);
        return tf.where(tf.broadcastTo(tf.greaterEqual(perImage(bits), 8), x.shape), x, kept) as tf.Tensor4D;
      }
      case 'Color':
        return blend(luma(x), x, perImage(args));
      case 'Contrast':
        return blend(tf.mean(luma(x), [1, 2, 3], true), x, perImage(args));
      case 'Brightness':
        return blend(tf.zeros([1, 1, 1, 1]), x, perImage(args));
      case 'Sharpness':
        return blend(smooth(x), x, perImage(args));
      default:
        throw new Error(`RandAugment: ${op} is geometric; use warpAffine`);
    }
  });
}

/** What RandAugment drew for one image in one round. */
export interface Draw {
  readonly op: RandOp;
  readonly applied: boolean;
  readonly arg: number;
}

/** The draws for a batch: [round][image]. Four values per image and round, so streams stay aligned. */
export function drawOps(n: number, s: RandAugmentSettings, rng: Rng): Draw[][] {
  const rounds: Draw[][] = [];
  for (let r = 0; r < s.ops; r++) {
    const row: Draw[] = [];
    for (let i = 0; i < n; i++) {
      const list = OP_SETS[s.opSet ?? 'timm'];
      const op = list[rng.int(list.length)]!;
      const applied = rng.next() < s.prob;
      const noisy = s.magnitudeStd > 0 ? rng.gauss(s.magnitude, s.magnitudeStd) : s.magnitude;
      const level = Math.min(s.magnitudeMax, Math.max(0, noisy));
      const sign = rng.sign();
      row.push({ op, applied, arg: opArgument(op, level, sign, s) });
    }
    rounds.push(row);
  }
  return rounds;
}

/**
 * Applies the drawn operations: per round, images are grouped by operation so each image goes
 * through exactly one kernel chain, then put back in order. Boxes follow the geometric ones.
 */
export function applyDraws(
  images: tf.Tensor4D,
  boxes: Float32Array,
  draws: readonly (readonly Draw[])[],
  fill: readonly number[],
): { images: tf.Tensor4D; boxes: Float32Array } {
  const [n, h, w] = images.shape;
  const outBoxes = Float32Array.from(boxes);
  let x = tf.clone(images);
  for (const row of draws) {
    const groups = new Map<RandOp, number[]>();
    for (let i = 0; i < n; i++) {
      const d = row[i]!;
      const key: RandOp = d.applied ? (isGeometric(d.op) ? 'Rotate' : d.op) : 'Identity';
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(i);
    }
    if (groups.size === 1 && groups.has('Identity')) continue;
    const next = tf.tidy(() => {
      const pieces: tf.Tensor4D[] = [];
      const order: number[] = [];
      for (const [key, members] of groups) {
        const sub = members.length === n ? x : (tf.gather(x, tf.tensor1d(members, 'int32')) as tf.Tensor4D);
        if (key === 'Rotate') {
          // Every geometric operation is an affine warp, so they share one resampling.
          const mats = members.map((i) => affineOf(row[i]!.op, row[i]!.arg, h, w));
          pieces.push(warpAffine(sub, mats, fill));
          members.forEach((i, k) => outBoxes.set(moveBox(Array.from(outBoxes.subarray(i * 4, i * 4 + 4)), mats[k]!, h, w), i * 4));
        } else {
          pieces.push(
            key === 'Identity'
              ? sub
              : colourOp(
                  key,
                  sub,
                  members.map((i) => row[i]!.arg),
                ),
          );
        }
        order.push(...members);
      }
      const joined = pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 0);
      const inverse = new Int32Array(n);
      order.forEach((i, k) => (inverse[i] = k));
      return tf.gather(joined, tf.tensor1d(inverse, 'int32')) as tf.Tensor4D;
    });
    x.dispose();
    x = next;
  }
  return { images: x, boxes: outBoxes };
}
