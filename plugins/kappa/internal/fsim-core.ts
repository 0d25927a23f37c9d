/**
 * FSIM / FSIMc of one image pair on plain arrays, following Zhang et al.'s FeatureSIM.m step by
 * step (downsampling, YIQ conversion, phase congruency, Scharr gradient, pooling by max PC).
 */
import { phaseCongruency, type PhaseCongruencyParams } from './phasecong.ts';

export interface FsimConfig {
  readonly pc: PhaseCongruencyParams;
  /** 0: F = max(1, round(min(rows, cols) / 256)) as the reference; otherwise the factor itself. */
  readonly downsample: number;
  readonly t1: number;
  readonly t2: number;
  readonly t3: number;
  readonly t4: number;
  readonly lambda: number;
}

export interface FsimResult {
  readonly fsim: number;
  readonly fsimc: number;
}

/** An image as planes on the 0–255 scale the reference constants (T2, T3, T4) assume. */
export interface Planes {
  readonly rows: number;
  readonly cols: number;
  /** 1 (grey) or 3 (RGB) row-major planes. */
  readonly channels: Float64Array[];
}

export function downsampleFactor(rows: number, cols: number, setting: number): number {
  if (setting >= 1) return Math.floor(setting);
  return Math.max(1, Math.round(Math.min(rows, cols) / 256));
}

/**
 * MATLAB's conv2(x, ones(F)/F², 'same') (zero padding) sampled at 1:F:end. For even F the
 * 'same' window is not centred: output i averages inputs i - (F-1-⌊F/2⌋) … i + ⌊F/2⌋.
 */
export function averageDownsample(x: Float64Array, rows: number, cols: number, f: number): { data: Float64Array; rows: number; cols: number } {
  if (f === 1) return { data: x, rows, cols };
  const outRows = Math.ceil(rows / f);
  const outCols = Math.ceil(cols / f);
  const out = new Float64Array(outRows * outCols);
  const after = Math.floor(f / 2);
  const before = f - 1 - after;
  const norm = 1 / (f * f);
  for (let orow = 0; orow < outRows; orow++) {
    const r0 = orow * f;
    for (let ocol = 0; ocol < outCols; ocol++) {
      const c0 = ocol * f;
      let acc = 0;
      for (let r = r0 - before; r <= r0 + after; r++) {
        if (r < 0 || r >= rows) continue;
        for (let c = c0 - before; c <= c0 + after; c++) {
          if (c < 0 || c >= cols) continue;
          acc += x[r * cols + c]!;
        }
      }
      out[orow * outCols + ocol] = acc * norm;
    }
  }
  return { data: out, rows: outRows, cols: outCols };
}

/** |∇| with the Scharr kernels of FeatureSIM.m ([3 10 3]/16), conv2 'same' with zero padding. */
export function scharrMagnitude(y: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const at = (r: number, c: number): number => (r < 0 || r >= rows || c < 0 || c >= cols ? 0 : y[r * cols + c]!);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const gx = (3 * (at(r - 1, c + 1) - at(r - 1, c - 1)) + 10 * (at(r, c + 1) - at(r, c - 1)) + 3 * (at(r + 1, c + 1) - at(r + 1, c - 1))) / 16;
      const gy = (3 * (at(r + 1, c - 1) - at(r - 1, c - 1)) + 10 * (at(r + 1, c) - at(r - 1, c)) + 3 * (at(r + 1, c + 1) - at(r - 1, c + 1))) / 16;
      out[r * cols + c] = Math.sqrt(gx * gx + gy * gy);
    }
  }
  return out;
}

function yiq(img: Planes): { y: Float64Array; i: Float64Array | null; q: Float64Array | null } {
  const n = img.rows * img.cols;
  if (img.channels.length === 1) return { y: img.channels[0]!, i: null, q: null };
  const [r, g, b] = img.channels as [Float64Array, Float64Array, Float64Array];
  const y = new Float64Array(n);
  const i = new Float64Array(n);
  const q = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    y[k] = 0.299 * r[k]! + 0.587 * g[k]! + 0.114 * b[k]!;
    i[k] = 0.596 * r[k]! - 0.274 * g[k]! - 0.322 * b[k]!;
    q[k] = 0.211 * r[k]! - 0.523 * g[k]! + 0.312 * b[k]!;
  }
  return { y, i, q };
}

/** real(p^λ) as MATLAB evaluates it: a negative base gives |p|^λ·cos(λπ). */
function realPow(p: number, lambda: number): number {
  return p >= 0 ? Math.pow(p, lambda) : Math.pow(-p, lambda) * Math.cos(lambda * Math.PI);
}

/** What FSIM needs of one image; computed once per image, compared for any number of pairs. */
export interface FsimFeatures {
  readonly n: number;
  readonly pc: Float64Array;
  readonly g: Float64Array;
  readonly i: Float64Array | null;
  readonly q: Float64Array | null;
}

export function fsimFeatures(img: Planes, cfg: FsimConfig, chromatic: boolean): FsimFeatures {
  const { rows, cols } = img;
  const f = downsampleFactor(rows, cols, cfg.downsample);
  const a = yiq(img);
  const y = averageDownsample(a.y, rows, cols, f);
  // Grey input: I = Q = 1 in the reference, which makes the chromatic factor exactly 1.
  const useChroma = chromatic && a.i !== null;
  return {
    n: y.rows * y.cols,
    pc: phaseCongruency(y.data, y.rows, y.cols, cfg.pc),
    g: scharrMagnitude(y.data, y.rows, y.cols),
    i: useChroma ? averageDownsample(a.i!, rows, cols, f).data : null,
    q: useChroma ? averageDownsample(a.q!, rows, cols, f).data : null,
  };
}

export function fsimPair(ref: Planes, dis: Planes, cfg: FsimConfig, chromatic: boolean): FsimResult {
  return fsimCompare(fsimFeatures(ref, cfg, chromatic), fsimFeatures(dis, cfg, chromatic), cfg);
}

export function fsimCompare(fa: FsimFeatures, fb: FsimFeatures, cfg: FsimConfig): FsimResult {
  const n = fa.n;
  const { pc: pc1, g: g1, i: i1, q: q1 } = fa;
  const { pc: pc2, g: g2, i: i2, q: q2 } = fb;
  const useChroma = i1 !== null && i2 !== null;

  let num = 0;
  let numC = 0;
  let den = 0;
  let plain = 0;
  let plainC = 0;
  for (let k = 0; k < n; k++) {
    const p1 = pc1[k]!;
    const p2 = pc2[k]!;
    const sPc = (2 * p1 * p2 + cfg.t1) / (p1 * p1 + p2 * p2 + cfg.t1);
    const sG = (2 * g1[k]! * g2[k]! + cfg.t2) / (g1[k]! * g1[k]! + g2[k]! * g2[k]! + cfg.t2);
    const pcm = Math.max(p1, p2);
    const sl = sG * sPc;
    let chroma = 1;
    if (useChroma) {
      const sI = (2 * i1![k]! * i2![k]! + cfg.t3) / (i1![k]! * i1![k]! + i2![k]! * i2![k]! + cfg.t3);
      const sQ = (2 * q1![k]! * q2![k]! + cfg.t4) / (q1![k]! * q1![k]! + q2![k]! * q2![k]! + cfg.t4);
      chroma = realPow(sI * sQ, cfg.lambda);
    }
    num += sl * pcm;
    numC += sl * chroma * pcm;
    den += pcm;
    plain += sl;
    plainC += sl * chroma;
  }
  // No phase congruency anywhere (flat images): the reference gives 0/0; fall back to the
  // unweighted mean of the similarity maps so flat-vs-flat compares by gradient and colour only.
  if (!(den > 0)) return { fsim: plain / n, fsimc: plainC / n };
  return { fsim: num / den, fsimc: numC / den };
}
