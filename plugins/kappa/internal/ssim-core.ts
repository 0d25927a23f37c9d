/**
 * Mean SSIM of one pair of single-channel images, reproducing scikit-image's
 * structural_similarity(gaussian_weights=True, use_sample_covariance=False): local statistics from
 * a normalised separable Gaussian over the whole image with scipy.ndimage's 'reflect' border
 * (…c b a | a b c…), the SSIM map cropped by (window − 1)/2 on every side, then averaged.
 *
 * Plain float64 loops rather than tfjs ops: on the JS cpu backend the slicing and padding kernels
 * a tensor formulation needs cost seconds per 512² image, against milliseconds here, and float64
 * keeps E[x²] − E[x]² from cancelling.
 */

export interface SsimParams {
  readonly window: number;
  readonly sigma: number;
  readonly k1: number;
  readonly k2: number;
  readonly dataRange: number;
}

export function gaussianWindow(window: number, sigma: number): Float64Array {
  const r = (window - 1) / 2;
  const w = new Float64Array(window);
  let total = 0;
  for (let i = 0; i < window; i++) {
    w[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma));
    total += w[i]!;
  }
  for (let i = 0; i < window; i++) w[i] = w[i]! / total;
  return w;
}

/** scipy.ndimage 'reflect': half-sample symmetric, periodic with period 2n. */
function reflect(i: number, n: number): number {
  const m = ((i % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - m - 1;
}

/** Separable filtering of `src` (rows×cols) into `dst`, through the scratch buffer `tmp`. */
function blur(
  src: Float64Array,
  dst: Float64Array,
  tmp: Float64Array,
  line: Float64Array,
  rows: number,
  cols: number,
  w: Float64Array,
  rowIdx: Int32Array,
  colIdx: Int32Array,
): void {
  const win = w.length;
  tmp.fill(0);
  for (let r = 0; r < rows; r++) {
    const out = r * cols;
    for (let k = 0; k < win; k++) {
      const wk = w[k]!;
      const inRow = rowIdx[r + k]! * cols;
      for (let c = 0; c < cols; c++) tmp[out + c] += wk * src[inRow + c]!;
    }
  }
  const padded = cols + win - 1;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let i = 0; i < padded; i++) line[i] = tmp[row + colIdx[i]!]!;
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < win; k++) acc += w[k]! * line[c + k]!;
      dst[row + c] = acc;
    }
  }
}

export function meanSsim(x: ArrayLike<number>, y: ArrayLike<number>, rows: number, cols: number, p: SsimParams): number {
  const n = rows * cols;
  const win = p.window;
  const pad = (win - 1) / 2;
  const w = gaussianWindow(win, p.sigma);
  const rowIdx = new Int32Array(rows + 2 * pad);
  const colIdx = new Int32Array(cols + 2 * pad);
  for (let i = 0; i < rowIdx.length; i++) rowIdx[i] = reflect(i - pad, rows);
  for (let i = 0; i < colIdx.length; i++) colIdx[i] = reflect(i - pad, cols);

  const src = new Float64Array(n);
  const tmp = new Float64Array(n);
  const line = new Float64Array(colIdx.length);
  const ux = new Float64Array(n);
  const uy = new Float64Array(n);
  const uxx = new Float64Array(n);
  const uyy = new Float64Array(n);
  const uxy = new Float64Array(n);
  const run = (dst: Float64Array) => blur(src, dst, tmp, line, rows, cols, w, rowIdx, colIdx);
  for (let i = 0; i < n; i++) src[i] = x[i]!;
  run(ux);
  for (let i = 0; i < n; i++) src[i] = y[i]!;
  run(uy);
  for (let i = 0; i < n; i++) src[i] = x[i]! * x[i]!;
  run(uxx);
  for (let i = 0; i < n; i++) src[i] = y[i]! * y[i]!;
  run(uyy);
  for (let i = 0; i < n; i++) src[i] = x[i]! * y[i]!;
  run(uxy);

  const c1 = (p.k1 * p.dataRange) ** 2;
  const c2 = (p.k2 * p.dataRange) ** 2;
  let sum = 0;
  for (let r = pad; r < rows - pad; r++) {
    for (let c = pad; c < cols - pad; c++) {
      const i = r * cols + c;
      const mx = ux[i]!;
      const my = uy[i]!;
      const vx = uxx[i]! - mx * mx;
      const vy = uyy[i]! - my * my;
      const vxy = uxy[i]! - mx * my;
      sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
  }
  return sum / ((rows - 2 * pad) * (cols - 2 * pad));
}
