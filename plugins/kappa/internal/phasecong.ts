/**
 * Phase congruency (Kovesi) on a single-channel image held as a row-major Float64Array.
 *
 * Two variants, because the two FSIM configurations this project reproduces use different ones:
 * - `phasecong2`: the routine embedded in Zhang et al.'s FeatureSIM.m (Gaussian angular spread
 *   with dThetaOnSigma, noise from the median of the smallest-scale energy², the 1/1.7 rescale of
 *   the noise threshold, PC = ΣEnergy / ΣAmplitude over all orientations). This is the one that
 *   reproduces the published FSIM values.
 * - `phasecong3`: Kovesi's later routine as found in the phasepack Python port (cosine angular
 *   spread, noise from the median of the smallest-scale amplitude, frequency-spread weighting
 *   with cutOff and g). The map returned is the sum of the per-orientation PC maps.
 */
import { fft2d } from './fft.ts';

export type PhaseCongruencyAlgorithm = 'phasecong2' | 'phasecong3';

export interface PhaseCongruencyParams {
  readonly algorithm: PhaseCongruencyAlgorithm;
  readonly nscale: number;
  readonly norient: number;
  readonly minWaveLength: number;
  readonly mult: number;
  readonly sigmaOnf: number;
  /** phasecong2 only: angular spacing of the filters over the angular Gaussian's σ. */
  readonly dThetaOnSigma: number;
  readonly k: number;
  /** phasecong3 only: frequency-spread fraction below which PC is penalised. */
  readonly cutOff: number;
  /** phasecong3 only: sharpness of the frequency-spread sigmoid. */
  readonly g: number;
  readonly epsilon: number;
}

interface FilterBank {
  /** filters[o * nscale + s]: real transfer function with the zero frequency at index 0. */
  readonly filters: Float64Array[];
  /** phasecong2: Σ filter² of the smallest scale, per orientation. */
  readonly emN: Float64Array;
  /** phasecong2: 2·Σ(Σ_s f_s²) + 4·Σ(Σ_{i<j} f_i f_j) of the spatial even filters, per orientation. */
  readonly noiseGain: Float64Array;
}

/** Grid coordinates normalised to ±0.5, quadrant-shifted so the zero frequency is at index 0. */
function shiftedAxis(n: number): Float64Array {
  const out = new Float64Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    const j = (i + half) % n; // ifftshift
    out[i] = n % 2 ? (j - (n - 1) / 2) / (n - 1) : (j - n / 2) / n;
  }
  return out;
}

const bankCache = new Map<string, FilterBank>();
const BANK_CACHE_SIZE = 4;

function filterBank(rows: number, cols: number, p: PhaseCongruencyParams): FilterBank {
  const key = JSON.stringify([rows, cols, p]);
  const hit = bankCache.get(key);
  if (hit) {
    bankCache.delete(key);
    bankCache.set(key, hit);
    return hit;
  }
  const size = rows * cols;
  const xs = shiftedAxis(cols);
  const ys = shiftedAxis(rows);
  const radius = new Float64Array(size);
  const sinT = new Float64Array(size);
  const cosT = new Float64Array(size);
  const lowpass = new Float64Array(size);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const x = xs[c]!;
      const y = ys[r]!;
      const rad = Math.sqrt(x * x + y * y);
      // Butterworth low-pass, cutoff 0.45, order 15 (exponent 2·15), as lowpassfilter.m.
      lowpass[i] = 1 / (1 + Math.pow(rad / 0.45, 30));
      radius[i] = rad;
      const theta = Math.atan2(-y, x);
      sinT[i] = Math.sin(theta);
      cosT[i] = Math.cos(theta);
    }
  }
  radius[0] = 1; // keeps log(radius) finite; the DC value of every filter is zeroed below

  const logGabor: Float64Array[] = [];
  const denom = 2 * Math.log(p.sigmaOnf) ** 2;
  for (let s = 0; s < p.nscale; s++) {
    const fo = 1 / (p.minWaveLength * Math.pow(p.mult, s));
    const lg = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const l = Math.log(radius[i]! / fo);
      lg[i] = Math.exp(-(l * l) / denom) * lowpass[i]!;
    }
    lg[0] = 0;
    logGabor.push(lg);
  }

  const filters: Float64Array[] = [];
  const emN = new Float64Array(p.norient);
  const noiseGain = new Float64Array(p.norient);
  const thetaSigma = Math.PI / p.norient / p.dThetaOnSigma;
  for (let o = 0; o < p.norient; o++) {
    const angl = (o * Math.PI) / p.norient;
    const ca = Math.cos(angl);
    const sa = Math.sin(angl);
    const spread = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const ds = sinT[i]! * ca - cosT[i]! * sa;
      const dc = cosT[i]! * ca + sinT[i]! * sa;
      const dtheta = Math.abs(Math.atan2(ds, dc));
      if (p.algorithm === 'phasecong2') {
        spread[i] = Math.exp(-(dtheta * dtheta) / (2 * thetaSigma * thetaSigma));
      } else {
        const d = Math.min(Math.max((dtheta * p.norient) / 2, 0), Math.PI);
        spread[i] = (Math.cos(d) + 1) / 2;
      }
    }
    const spatial: Float64Array[] = [];
    for (let s = 0; s < p.nscale; s++) {
      const f = new Float64Array(size);
      const lg = logGabor[s]!;
      for (let i = 0; i < size; i++) f[i] = lg[i]! * spread[i]!;
      filters.push(f);
      if (p.algorithm === 'phasecong2') {
        if (s === 0) {
          let e = 0;
          for (let i = 0; i < size; i++) e += f[i]! * f[i]!;
          emN[o] = e;
        }
        // real(ifft2(filter)) · sqrt(rows·cols): the even spatial filter, scaled to match power.
        const buf = new Float64Array(2 * size);
        for (let i = 0; i < size; i++) buf[2 * i] = f[i]!;
        fft2d(buf, rows, cols, true);
        const scale = Math.sqrt(size);
        const sp = new Float64Array(size);
        for (let i = 0; i < size; i++) sp[i] = buf[2 * i]! * scale;
        spatial.push(sp);
      }
    }
    if (p.algorithm === 'phasecong2') {
      let sumAn2 = 0;
      let sumAiAj = 0;
      for (let i = 0; i < size; i++) {
        let sq = 0;
        let cross = 0;
        for (let si = 0; si < p.nscale; si++) {
          const a = spatial[si]![i]!;
          sq += a * a;
          for (let sj = si + 1; sj < p.nscale; sj++) cross += a * spatial[sj]![i]!;
        }
        sumAn2 += sq;
        sumAiAj += cross;
      }
      noiseGain[o] = 2 * sumAn2 + 4 * sumAiAj;
    }
  }

  const bank: FilterBank = { filters, emN, noiseGain };
  bankCache.set(key, bank);
  if (bankCache.size > BANK_CACHE_SIZE) bankCache.delete(bankCache.keys().next().value!);
  return bank;
}

/** Median as MATLAB and numpy define it (mean of the two middle values for even lengths). */
export function median(values: Float64Array): number {
  const a = values.slice();
  const n = a.length;
  if (n === 0) return NaN;
  const mid = n >> 1;
  select(a, mid);
  const upper = a[mid]!;
  if (n % 2) return upper;
  let lower = -Infinity;
  for (let i = 0; i < mid; i++) if (a[i]! > lower) lower = a[i]!;
  return (lower + upper) / 2;
}

/** Hoare quickselect: afterwards a[k] is the k-th smallest and a[0..k) ≤ a[k]. */
function select(a: Float64Array, k: number): void {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const m = (lo + hi) >> 1;
    // median of three as the pivot, so sorted or constant inputs stay O(n)
    const x = a[lo]!;
    const y = a[m]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/**
 * The phase-congruency map of `image` (rows×cols, row-major). Where no filter responds at all
 * (a flat image) the reference code divides 0 by 0; that point is returned as 0 here.
 */
export function phaseCongruency(image: Float64Array, rows: number, cols: number, p: PhaseCongruencyParams): Float64Array {
  const size = rows * cols;
  const bank = filterBank(rows, cols, p);
  const imageFft = new Float64Array(2 * size);
  for (let i = 0; i < size; i++) imageFft[2 * i] = image[i]!;
  fft2d(imageFft, rows, cols, false);

  const ns = p.nscale;
  const eps = p.epsilon;
  const eo: Float64Array[] = [];
  for (let s = 0; s < ns; s++) eo.push(new Float64Array(2 * size));
  const sumE = new Float64Array(size);
  const sumO = new Float64Array(size);
  const sumAn = new Float64Array(size);
  const maxAn = new Float64Array(size);
  const energy = new Float64Array(size);
  const energyAll = new Float64Array(size);
  const anAll = new Float64Array(size);
  const pcSum = new Float64Array(size);
  const smallest = new Float64Array(size);

  for (let o = 0; o < p.norient; o++) {
    sumE.fill(0);
    sumO.fill(0);
    sumAn.fill(0);
    energy.fill(0);
    for (let s = 0; s < ns; s++) {
      const f = bank.filters[o * ns + s]!;
      const buf = eo[s]!;
      for (let i = 0; i < size; i++) {
        buf[2 * i] = imageFft[2 * i]! * f[i]!;
        buf[2 * i + 1] = imageFft[2 * i + 1]! * f[i]!;
      }
      fft2d(buf, rows, cols, true);
      for (let i = 0; i < size; i++) {
        const e = buf[2 * i]!;
        const od = buf[2 * i + 1]!;
        const an = Math.sqrt(e * e + od * od);
        sumAn[i] = sumAn[i]! + an;
        sumE[i] = sumE[i]! + e;
        sumO[i] = sumO[i]! + od;
        if (s === 0) {
          maxAn[i] = an;
          smallest[i] = p.algorithm === 'phasecong2' ? e * e + od * od : an;
        } else if (an > maxAn[i]!) {
          maxAn[i] = an;
        }
      }
    }

    for (let i = 0; i < size; i++) {
      const xEnergy = Math.sqrt(sumE[i]! * sumE[i]! + sumO[i]! * sumO[i]!) + eps;
      const meanE = sumE[i]! / xEnergy;
      const meanO = sumO[i]! / xEnergy;
      let en = 0;
      for (let s = 0; s < ns; s++) {
        const e = eo[s]![2 * i]!;
        const od = eo[s]![2 * i + 1]!;
        en += e * meanE + od * meanO - Math.abs(e * meanO - od * meanE);
      }
      energy[i] = en;
    }

    if (p.algorithm === 'phasecong2') {
      const meanE2n = -median(smallest) / Math.log(0.5);
      const noisePower = meanE2n / bank.emN[o]!;
      const estNoiseEnergy2 = noisePower * bank.noiseGain[o]!;
      const tau = Math.sqrt(estNoiseEnergy2 / 2); // Rayleigh parameter
      const estNoiseEnergy = tau * Math.sqrt(Math.PI / 2);
      const estNoiseEnergySigma = Math.sqrt((2 - Math.PI / 2) * tau * tau);
      // 1.7: Kovesi's empirical correction of the PC_1 noise estimate for the PC_2 measure.
      const t = (estNoiseEnergy + p.k * estNoiseEnergySigma) / 1.7;
      for (let i = 0; i < size; i++) {
        energyAll[i] = energyAll[i]! + Math.max(energy[i]! - t, 0);
        anAll[i] = anAll[i]! + sumAn[i]!;
      }
    } else {
      const tau = median(smallest) / Math.sqrt(Math.log(4));
      const totalTau = (tau * (1 - Math.pow(1 / p.mult, ns))) / (1 - 1 / p.mult);
      const mean = totalTau * Math.sqrt(Math.PI / 2);
      const sigma = totalTau * Math.sqrt((4 - Math.PI) / 2);
      const t = Math.max(mean + p.k * sigma, eps);
      for (let i = 0; i < size; i++) {
        const en = Math.max(energy[i]! - t, 0);
        const width = (sumAn[i]! / (maxAn[i]! + eps) - 1) / (ns - 1);
        const weight = 1 / (1 + Math.exp(p.g * (p.cutOff - width)));
        const an = sumAn[i]!;
        pcSum[i] = pcSum[i]! + (an > 0 ? (weight * en) / an : 0);
      }
    }
  }

  if (p.algorithm === 'phasecong3') return pcSum;
  const pc = new Float64Array(size);
  for (let i = 0; i < size; i++) pc[i] = anAll[i]! > 0 ? energyAll[i]! / anAll[i]! : 0;
  return pc;
}
