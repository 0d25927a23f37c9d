/**
 * Complex FFTs on interleaved Float64Arrays ([re0, im0, re1, im1, ...]), for any length.
 *
 * The tfjs wasm and cpu backends have no usable FFT kernel for this, and phase congruency needs
 * exact frequency-domain filtering at the image's own size (zero-padding would change the result),
 * so lengths such as 192 or 224 must work as well as powers of two. Small prime factors use a
 * mixed-radix Cooley–Tukey recursion; a length with a large prime factor falls back to
 * Bluestein's chirp-z algorithm so the cost stays O(n log n).
 */

const LARGE_PRIME = 61;

interface Plan {
  readonly n: number;
  transform(data: Float64Array, inverse: boolean): void;
}

function factorize(n: number): number[] {
  // Radix 4 first: it is the cheapest butterfly per point.
  const factors: number[] = [];
  let p = 4;
  let rest = n;
  const limit = Math.floor(Math.sqrt(n));
  while (rest > 1) {
    while (rest % p !== 0) {
      p = p === 4 ? 2 : p === 2 ? 3 : p + 2;
      if (p > limit) p = rest;
    }
    rest /= p;
    factors.push(p);
  }
  return factors;
}

class MixedRadixPlan implements Plan {
  readonly n: number;
  private readonly factors: number[];
  private readonly twRe: Float64Array;
  private readonly twIm: Float64Array;
  private readonly work: Float64Array;
  private readonly scratch: Float64Array;

  constructor(n: number) {
    this.n = n;
    this.factors = factorize(n);
    this.twRe = new Float64Array(n);
    this.twIm = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = (-2 * Math.PI * i) / n;
      this.twRe[i] = Math.cos(a);
      this.twIm[i] = Math.sin(a);
    }
    this.work = new Float64Array(2 * n);
    const maxP = Math.max(2, ...this.factors);
    this.scratch = new Float64Array(2 * maxP);
  }

  transform(data: Float64Array, inverse: boolean): void {
    const n = this.n;
    if (n === 1) return;
    const w = this.work;
    // The inverse is the forward transform of the conjugate, conjugated (unscaled here).
    if (inverse) for (let i = 1; i < 2 * n; i += 2) data[i] = -data[i];
    this.pass(w, 0, data, 0, 1, 0);
    if (inverse)
      for (let i = 0; i < 2 * n; i += 2) {
        data[i] = w[i];
        data[i + 1] = -w[i + 1];
      }
    else data.set(w);
  }

  /** Decimation in time: out[outOff .. outOff + p*m) from input elements inOff, inOff+stride, ... */
  private pass(out: Float64Array, outOff: number, inp: Float64Array, inOff: number, stride: number, level: number): void {
    const p = this.factors[level]!;
    const m = this.n / (stride * p);
    if (m === 1) {
      for (let q = 0; q < p; q++) {
        const src = 2 * (inOff + q * stride);
        const dst = 2 * (outOff + q);
        out[dst] = inp[src]!;
        out[dst + 1] = inp[src + 1]!;
      }
    } else {
      for (let q = 0; q < p; q++) this.pass(out, outOff + q * m, inp, inOff + q * stride, stride * p, level + 1);
    }
    if (p === 2) this.bfly2(out, outOff, stride, m);
    else if (p === 4) this.bfly4(out, outOff, stride, m);
    else this.bflyGeneric(out, outOff, stride, m, p);
  }

  private bfly2(f: Float64Array, off: number, fstride: number, m: number): void {
    const twRe = this.twRe;
    const twIm = this.twIm;
    for (let k = 0; k < m; k++) {
      const a = 2 * (off + k);
      const b = 2 * (off + k + m);
      const wr = twRe[k * fstride]!;
      const wi = twIm[k * fstride]!;
      const tr = f[b]! * wr - f[b + 1]! * wi;
      const ti = f[b]! * wi + f[b + 1]! * wr;
      f[b] = f[a]! - tr;
      f[b + 1] = f[a + 1]! - ti;
      f[a] = f[a]! + tr;
      f[a + 1] = f[a + 1]! + ti;
    }
  }

  private bfly4(f: Float64Array, off: number, fstride: number, m: number): void {
    const twRe = this.twRe;
    const twIm = this.twIm;
    for (let k = 0; k < m; k++) {
      const i0 = 2 * (off + k);
      const i1 = 2 * (off + k + m);
      const i2 = 2 * (off + k + 2 * m);
      const i3 = 2 * (off + k + 3 * m);
      let wr = twRe[k * fstride]!;
      let wi = twIm[k * fstride]!;
      const s0r = f[i1]! * wr - f[i1 + 1]! * wi;
      const s0i = f[i1]! * wi + f[i1 + 1]! * wr;
      wr = twRe[2 * k * fstride]!;
      wi = twIm[2 * k * fstride]!;
      const s1r = f[i2]! * wr - f[i2 + 1]! * wi;
      const s1i = f[i2]! * wi + f[i2 + 1]! * wr;
      wr = twRe[3 * k * fstride]!;
      wi = twIm[3 * k * fstride]!;
      const s2r = f[i3]! * wr - f[i3 + 1]! * wi;
      const s2i = f[i3]! * wi + f[i3 + 1]! * wr;
      const s5r = f[i0]! - s1r;
      const s5i = f[i0 + 1]! - s1i;
      const f0r = f[i0]! + s1r;
      const f0i = f[i0 + 1]! + s1i;
      const s3r = s0r + s2r;
      const s3i = s0i + s2i;
      const s4r = s0r - s2r;
      const s4i = s0i - s2i;
      f[i2] = f0r - s3r;
      f[i2 + 1] = f0i - s3i;
      f[i0] = f0r + s3r;
      f[i0 + 1] = f0i + s3i;
      f[i1] = s5r + s4i;
      f[i1 + 1] = s5i - s4r;
      f[i3] = s5r - s4i;
      f[i3 + 1] = s5i + s4r;
    }
  }

  private bflyGeneric(f: Float64Array, off: number, fstride: number, m: number, p: number): void {
    const n = this.n;
    const twRe = this.twRe;
    const twIm = this.twIm;
    const s = this.scratch;
    for (let u = 0; u < m; u++) {
      for (let q = 0; q < p; q++) {
        const i = 2 * (off + u + q * m);
        s[2 * q] = f[i]!;
        s[2 * q + 1] = f[i + 1]!;
      }
      for (let q1 = 0; q1 < p; q1++) {
        const k = u + q1 * m;
        let accR = s[0]!;
        let accI = s[1]!;
        let idx = 0;
        const step = (fstride * k) % n;
        for (let q = 1; q < p; q++) {
          idx += step;
          if (idx >= n) idx -= n;
          const wr = twRe[idx]!;
          const wi = twIm[idx]!;
          accR += s[2 * q]! * wr - s[2 * q + 1]! * wi;
          accI += s[2 * q]! * wi + s[2 * q + 1]! * wr;
        }
        f[2 * (off + k)] = accR;
        f[2 * (off + k) + 1] = accI;
      }
    }
  }
}

/** Chirp-z: a length-n DFT as a circular convolution of power-of-two length. */
class BluesteinPlan implements Plan {
  readonly n: number;
  private readonly inner: MixedRadixPlan;
  private readonly chirpRe: Float64Array;
  private readonly chirpIm: Float64Array;
  private readonly kernelFft: Float64Array;
  private readonly buf: Float64Array;

  constructor(n: number) {
    this.n = n;
    let m = 1;
    while (m < 2 * n - 1) m *= 2;
    this.inner = new MixedRadixPlan(m);
    this.chirpRe = new Float64Array(n);
    this.chirpIm = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      // k² mod 2n keeps the angle small so the chirp stays accurate for large n.
      const a = (Math.PI * ((k * k) % (2 * n))) / n;
      this.chirpRe[k] = Math.cos(a);
      this.chirpIm[k] = -Math.sin(a);
    }
    const kernel = new Float64Array(2 * m);
    for (let k = 0; k < n; k++) {
      kernel[2 * k] = this.chirpRe[k]!;
      kernel[2 * k + 1] = -this.chirpIm[k]!;
      if (k > 0) {
        kernel[2 * (m - k)] = this.chirpRe[k]!;
        kernel[2 * (m - k) + 1] = -this.chirpIm[k]!;
      }
    }
    this.inner.transform(kernel, false);
    this.kernelFft = kernel;
    this.buf = new Float64Array(2 * m);
  }

  transform(data: Float64Array, inverse: boolean): void {
    const n = this.n;
    const m = this.inner.n;
    const b = this.buf;
    b.fill(0);
    const sign = inverse ? -1 : 1;
    for (let k = 0; k < n; k++) {
      const xr = data[2 * k]!;
      const xi = sign * data[2 * k + 1]!;
      const cr = this.chirpRe[k]!;
      const ci = this.chirpIm[k]!;
      b[2 * k] = xr * cr - xi * ci;
      b[2 * k + 1] = xr * ci + xi * cr;
    }
    this.inner.transform(b, false);
    const kf = this.kernelFft;
    for (let k = 0; k < m; k++) {
      const ar = b[2 * k]!;
      const ai = b[2 * k + 1]!;
      b[2 * k] = ar * kf[2 * k]! - ai * kf[2 * k + 1]!;
      b[2 * k + 1] = ar * kf[2 * k + 1]! + ai * kf[2 * k]!;
    }
    this.inner.transform(b, true);
    for (let k = 0; k < n; k++) {
      const yr = b[2 * k]! / m;
      const yi = b[2 * k + 1]! / m;
      const cr = this.chirpRe[k]!;
      const ci = this.chirpIm[k]!;
      data[2 * k] = yr * cr - yi * ci;
      data[2 * k + 1] = sign * (yr * ci + yi * cr);
    }
  }
}

const plans = new Map<number, Plan>();

function planFor(n: number): Plan {
  let plan = plans.get(n);
  if (!plan) {
    const factors = factorize(n);
    plan = Math.max(...factors, 1) > LARGE_PRIME ? new BluesteinPlan(n) : new MixedRadixPlan(n);
    plans.set(n, plan);
  }
  return plan;
}

/**
 * In-place 1-D DFT of an interleaved complex array of length n. The inverse is scaled by 1/n,
 * as MATLAB's and numpy's ifft are.
 */
export function fft1d(data: Float64Array, inverse = false): void {
  const n = data.length / 2;
  if (!Number.isInteger(n) || n < 1) throw new Error('fft1d expects an interleaved complex array of even length');
  planFor(n).transform(data, inverse);
  if (inverse) for (let i = 0; i < 2 * n; i++) data[i] = data[i]! / n;
}

/**
 * In-place 2-D DFT of a rows×cols interleaved complex array in row-major order; the inverse is
 * scaled by 1/(rows·cols).
 */
export function fft2d(data: Float64Array, rows: number, cols: number, inverse = false): void {
  if (data.length !== 2 * rows * cols) throw new Error(`fft2d: expected ${2 * rows * cols} values, got ${data.length}`);
  const rowPlan = planFor(cols);
  for (let r = 0; r < rows; r++) rowPlan.transform(data.subarray(2 * r * cols, 2 * (r + 1) * cols), inverse);
  const colPlan = planFor(rows);
  const col = new Float64Array(2 * rows);
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) {
      col[2 * r] = data[2 * (r * cols + c)]!;
      col[2 * r + 1] = data[2 * (r * cols + c) + 1]!;
    }
    colPlan.transform(col, inverse);
    for (let r = 0; r < rows; r++) {
      data[2 * (r * cols + c)] = col[2 * r]!;
      data[2 * (r * cols + c) + 1] = col[2 * r + 1]!;
    }
  }
  if (inverse) {
    const scale = 1 / (rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale;
  }
}

/** Forward 2-D DFT of a real rows×cols image. */
export function fft2dReal(image: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(2 * rows * cols);
  for (let i = 0; i < rows * cols; i++) out[2 * i] = image[i]!;
  fft2d(out, rows, cols, false);
  return out;
}
