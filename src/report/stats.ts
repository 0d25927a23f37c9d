/**
 * What a table says about numbers measured over several seeds: the mean, the sample standard
 * deviation and a Student-t confidence interval of the mean, and the same for paired differences
 * (two cells measured with the same seeds). The t quantile is computed from Student's t
 * distribution itself (the regularised incomplete beta function), for any number of seeds.
 */

/** An interval [low, high]. */
export type Interval = readonly [number, number];

/** What n measurements say about their mean. */
export interface Estimate {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation (divides by n − 1); null for one measurement. */
  readonly std: number | null;
  /** The 95 % Student-t interval of the mean, mean ± t(0.975, n − 1)·std/√n; null for one measurement. */
  readonly ci95: Interval | null;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 coefficients: about 15 significant digits). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b), for x in [0, 1] and a, b > 0. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast below the mean of the beta distribution; above it, by symmetry.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** P(T ≤ t) for Student's t distribution with df degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t distribution with df degrees of freedom (df ≥ 1), to about 1e-12. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df >= 1)) throw new RangeError(`studentTQuantile: needs 0 < p < 1 and df ≥ 1 (got p ${p}, df ${df})`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Mean, sample standard deviation and the 95 % t-interval of the mean of the measurements (at
 * least one). With `range`, the interval is cut to it: an accuracy's mean cannot leave
 * [0, 100] %, so an interval reaching past it only covers values that cannot be (it still
 * holds the true mean whenever the uncut one does).
 */
export function estimate(values: readonly number[], range?: Interval): Estimate {
  const n = values.length;
  if (n === 0) throw new RangeError('estimate: no measurements');
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { n, mean, std: null, ci95: null };
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  const half = (studentTQuantile(0.975, n - 1) * std) / Math.sqrt(n);
  const ci95: Interval = range ? [Math.max(range[0], mean - half), Math.min(range[1], mean + half)] : [mean - half, mean + half];
  return { n, mean, std, ci95 };
}

/**
 * The paired difference a − b over measurements taken in pairs (the same seed for both): the
 * estimate of the mean of a[i] − b[i], whose interval is narrower than the two cells' own when
 * the seeds move both the same way.
 */
export function pairedDifference(a: readonly number[], b: readonly number[], range?: Interval): Estimate {
  if (a.length !== b.length) throw new RangeError(`pairedDifference: ${a.length} and ${b.length} measurements do not pair`);
  return estimate(
    a.map((v, i) => v - b[i]!),
    range,
  );
}

/** Whether an interval lies wholly on one side of 0. */
export function excludesZero(interval: Interval | null): boolean {
  return interval !== null && (interval[0] > 0 || interval[1] < 0);
}

/**
 * McNemar's exact test of two classifiers scored on the same images: `onlyA` images only the
 * first got right, `onlyB` only the second. Under the hypothesis that both are equally accurate,
 * each of the n = onlyA + onlyB discordant images goes either way with probability ½, so the
 * two-sided p-value is 2·P(X ≤ min) for X ~ Binomial(n, ½), at most 1 (scipy.stats.binomtest).
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  if (!(Number.isInteger(onlyA) && Number.isInteger(onlyB) && onlyA >= 0 && onlyB >= 0))
    throw new RangeError(`mcnemarExact: needs two counts of images (got ${onlyA} and ${onlyB})`);
  const n = onlyA + onlyB;
  const k = Math.min(onlyA, onlyB);
  let tail = 0;
  for (let i = 0; i <= k; i++) tail += Math.exp(lnGamma(n + 1) - lnGamma(i + 1) - lnGamma(n - i + 1) - n * Math.LN2);
  return Math.min(1, 2 * tail);
}
