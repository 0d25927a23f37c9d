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

/** The filter, border tables and scratch buffers of one image size and window. */
class Blurrer {
  readonly pad: number;
  private readonly w: Float64Array;
  private readonly rowIdx: Int32Array;
  private readonly colIdx: Int32Array;
  private readonly tmp: Float64Array;
  private readonly line: Float64Array;
  readonly src: Float64Array;

  constructor(
    readonly rows: number,
    readonly cols: number,
    p: SsimParams,
  ) {
    const win = p.window;
    this.pad = (win - 1) / 2;
    this.w = gaussianWindow(win, p.sigma);
    this.rowIdx = new Int32Array(rows + 2 * this.pad);
    this.colIdx = new Int32Array(cols + 2 * this.pad);
    for (let i = 0; i < this.rowIdx.length; i++) this.rowIdx[i] = reflect(i - this.pad, rows);
    for (let i = 0; i < this.colIdx.length; i++) this.colIdx[i] = reflect(i - this.pad, cols);
    this.src = new Float64Array(rows * cols);
    this.tmp = new Float64Array(rows * cols);
    this.line = new Float64Array(this.colIdx.length);
  }

  /** Filters `src` into a new array. */
  run(): Float64Array {
    const dst = new Float64Array(this.rows * this.cols);
    blur(this.src, dst, this.tmp, this.line, this.rows, this.cols, this.w, this.rowIdx, this.colIdx);
    return dst;
  }
}

let lastBlurrer: { key: string; blurrer: Blurrer } | null = null;

/** The blurrer of an image size and window; consecutive calls of one κ share one. */
function blurrerFor(rows: number, cols: number, p: SsimParams): Blurrer {
  const key = `${rows}x${cols}/${p.window}/${p.sigma}`;
  if (lastBlurrer?.key !== key) lastBlurrer = { key, blurrer: new Blurrer(rows, cols, p) };
  return lastBlurrer.blurrer;
}

/** The local statistics SSIM needs of one image alone: the filtered image and its filtered square. */
export interface SsimStats {
  readonly mean: Float64Array;
  readonly meanSquare: Float64Array;
}

/**
 * The half of SSIM that depends on one image only. A batch compares every image with another
 * image of the same batch, so a caller that keeps these by image computes them once per image
 * instead of once per pair (see the ssim κ).
 */
export function ssimStats(x: ArrayLike<number>, rows: number, cols: number, p: SsimParams): SsimStats {
  const b = blurrerFor(rows, cols, p);
  const n = rows * cols;
  for (let i = 0; i < n; i++) b.src[i] = x[i]!;
  const mean = b.run();
  for (let i = 0; i < n; i++) b.src[i] = x[i]! * x[i]!;
  return { mean, meanSquare: b.run() };
}

/** Mean SSIM of a pair from each image's statistics (ssimStats) and the pair's own cross term. */
export function ssimOfStats(x: ArrayLike<number>, y: ArrayLike<number>, sx: SsimStats, sy: SsimStats, rows: number, cols: number, p: SsimParams): number {
  const b = blurrerFor(rows, cols, p);
  const n = rows * cols;
  const pad = b.pad;
  for (let i = 0; i < n; i++) b.src[i] = x[i]! * y[i]!;
  const uxy = b.run();
  const { mean: ux, meanSquare: uxx } = sx;
  const { mean: uy, meanSquare: uyy } = sy;
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

export function meanSsim(x: ArrayLike<number>, y: ArrayLike<number>, rows: number, cols: number, p: SsimParams): number {
  return ssimOfStats(x, y, ssimStats(x, rows, cols, p), ssimStats(y, rows, cols, p), rows, cols, p);
}
