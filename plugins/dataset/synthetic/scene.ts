/** Backgrounds, clutter, generic (non-face) images and the camera's last touches. */
import { Canvas, ellipsePoints, linear, radial, solid, type Paint, type RGB } from './raster.ts';
import type { Rng } from '../../../src/core/rng.ts';

function randomColor(rng: Rng, lo = 0, hi = 1): RGB {
  return [rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi)];
}

function randomPaint(rng: Rng, size: number): Paint {
  const c0 = randomColor(rng);
  if (rng.chance(0.4)) return solid(c0);
  const c1 = randomColor(rng);
  if (rng.chance(0.5)) {
    return linear(rng.uniform(0, size), rng.uniform(0, size), c0, rng.uniform(0, size), rng.uniform(0, size), c1);
  }
  return radial(rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.2, 1) * size, c0, c1);
}

function regularPolygon(cx: number, cy: number, r: number, sides: number, rot: number, inner = 1): number[] {
  const out: number[] = [];
  const n = inner === 1 ? sides : sides * 2;
  for (let i = 0; i < n; i++) {
    const a = rot + (2 * Math.PI * i) / n;
    const rr = inner === 1 || i % 2 === 0 ? r : r * inner;
    out.push(cx + rr * Math.cos(a), cy + rr * Math.sin(a));
  }
  return out;
}

/** A gradient wall with `clutter`-scaled random shapes, stripes and lines. */
export function drawBackground(canvas: Canvas, rng: Rng, clutter: number): void {
  const size = canvas.width;
  const c0 = randomColor(rng, 0.1, 0.95);
  const c1 = rng.chance(0.5) ? randomColor(rng, 0.1, 0.95) : ([c0[0] * 0.6, c0[1] * 0.6, c0[2] * 0.6] as RGB);
  const a = rng.uniform(0, 2 * Math.PI);
  const h = size / 2;
  canvas.fill(linear(h - Math.cos(a) * h, h - Math.sin(a) * h, c0, h + Math.cos(a) * h, h + Math.sin(a) * h, c1));
  const count = Math.round(Math.max(0, clutter) * rng.uniform(1, 7));
  for (let i = 0; i < count; i++) drawClutterShape(canvas, rng, size);
}

function drawClutterShape(canvas: Canvas, rng: Rng, size: number): void {
  const kind = rng.int(6);
  const cx = rng.uniform(-0.1, 1.1) * size,
    cy = rng.uniform(-0.1, 1.1) * size;
  const r = rng.uniform(0.05, 0.35) * size;
  const alpha = rng.uniform(0.4, 1);
  const paint = randomPaint(rng, size);
  switch (kind) {
    case 0:
      canvas.fillPolygon(ellipsePoints(cx, cy, r, r * rng.uniform(0.4, 1), rng.uniform(0, Math.PI), 28), paint, alpha);
      break;
    case 1:
      canvas.fillPolygon(regularPolygon(cx, cy, r, 4, rng.uniform(0, Math.PI)), paint, alpha);
      break;
    case 2:
      canvas.fillPolygon(regularPolygon(cx, cy, r, 3, rng.uniform(0, Math.PI)), paint, alpha);
      break;
    case 3: {
      // window frame / shelf: a few parallel bars
      const bars = 2 + rng.int(4);
      const a = rng.chance(0.5) ? 0 : Math.PI / 2;
      const gap = rng.uniform(0.05, 0.15) * size;
      const w = rng.uniform(0.5, 1.2) * gap * 0.4;
      for (let k = 0; k < bars; k++) {
        const o = (k - bars / 2) * gap;
        const x = cx + Math.cos(a + Math.PI / 2) * o,
          y = cy + Math.sin(a + Math.PI / 2) * o;
        canvas.stroke([x - Math.cos(a) * r * 2, y - Math.sin(a) * r * 2, x + Math.cos(a) * r * 2, y + Math.sin(a) * r * 2], w, paint, alpha);
      }
      break;
    }
    case 4:
      canvas.stroke([cx, cy, cx + rng.uniform(-1, 1) * size, cy + rng.uniform(-1, 1) * size], rng.uniform(0.005, 0.03) * size, paint, alpha);
      break;
    default: {
      // a blurry light blob (lamp, window glare)
      const c = randomColor(rng, 0.5, 1);
      canvas.fillPolygon(ellipsePoints(cx, cy, r, r, 0, 28), radial(cx, cy, r, c, c), 0.25);
      canvas.fillPolygon(ellipsePoints(cx, cy, r * 0.6, r * 0.6, 0, 28), radial(cx, cy, r * 0.6, c, c), 0.25);
    }
  }
}

/** Categories of the generic pool: ten shape / texture families. */
export const GENERIC_CATEGORIES = ['disc', 'square', 'triangle', 'star', 'cross', 'ring', 'stripes', 'checker', 'dots', 'waves'] as const;

/** A non-face picture whose main object belongs to `category` (index into GENERIC_CATEGORIES). */
export function drawGeneric(canvas: Canvas, rng: Rng, category: number, clutter: number): void {
  const size = canvas.width;
  drawBackground(canvas, rng, clutter);
  const cx = size * rng.uniform(0.3, 0.7),
    cy = size * rng.uniform(0.3, 0.7);
  const r = size * rng.uniform(0.18, 0.38);
  const rot = rng.uniform(0, 2 * Math.PI);
  const paint = randomPaint(rng, size);
  const color = randomColor(rng);
  switch (category) {
    case 0:
      canvas.fillPolygon(ellipsePoints(cx, cy, r, r * rng.uniform(0.75, 1), rot, 40), paint);
      break;
    case 1:
      canvas.fillPolygon(regularPolygon(cx, cy, r, 4, rot), paint);
      break;
    case 2:
      canvas.fillPolygon(regularPolygon(cx, cy, r, 3, rot), paint);
      break;
    case 3:
      canvas.fillPolygon(regularPolygon(cx, cy, r, 5 + rng.int(2), rot, rng.uniform(0.35, 0.5)), paint);
      break;
    case 4: {
      const w = r * rng.uniform(0.15, 0.3);
      for (const a of [rot, rot + Math.PI / 2]) {
        canvas.stroke([cx - Math.cos(a) * r, cy - Math.sin(a) * r, cx + Math.cos(a) * r, cy + Math.sin(a) * r], w, paint);
      }
      break;
    }
    case 5: {
      const outer = ellipsePoints(cx, cy, r, r, 0, 40);
      const inner = ellipsePoints(cx, cy, r * rng.uniform(0.45, 0.7), r * rng.uniform(0.45, 0.7), 0, 40);
      const reversed: number[] = [];
      for (let i = inner.length - 2; i >= 0; i -= 2) reversed.push(inner[i]!, inner[i + 1]!);
      canvas.fillPolygon([outer, reversed], paint);
      break;
    }
    case 6: {
      const gap = size * rng.uniform(0.06, 0.14);
      const w = gap * rng.uniform(0.2, 0.35);
      for (let o = -size; o <= size; o += gap) {
        const x = size / 2 + Math.cos(rot + Math.PI / 2) * o,
          y = size / 2 + Math.sin(rot + Math.PI / 2) * o;
        canvas.stroke([x - Math.cos(rot) * size, y - Math.sin(rot) * size, x + Math.cos(rot) * size, y + Math.sin(rot) * size], w, solid(color), 0.9);
      }
      break;
    }
    case 7: {
      const cell = size * rng.uniform(0.08, 0.18);
      const c = Math.cos(rot),
        s = Math.sin(rot);
      for (let i = -8; i <= 8; i++) {
        for (let j = -8; j <= 8; j++) {
          if ((i + j) % 2 !== 0) continue;
          const pts: number[] = [];
          for (const [u, v] of [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 1],
          ] as const) {
            const x = (i + u) * cell,
              y = (j + v) * cell;
            pts.push(cx + c * x - s * y, cy + s * x + c * y);
          }
          canvas.fillPolygon(pts, solid(color), 0.9);
        }
      }
      break;
    }
    case 8: {
      const n = 6 + rng.int(14);
      for (let k = 0; k < n; k++) {
        const rr = size * rng.uniform(0.025, 0.07);
        canvas.fillPolygon(ellipsePoints(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size, rr, rr, 0, 16), solid(color));
      }
      break;
    }
    default: {
      const gap = size * rng.uniform(0.08, 0.16);
      const amp = gap * rng.uniform(0.2, 0.6);
      const freq = (rng.uniform(1.5, 4) * 2 * Math.PI) / size;
      for (let o = -size * 0.2; o <= size * 1.2; o += gap) {
        const pts: number[] = [];
        for (let k = 0; k <= 24; k++) {
          const x = (k / 24) * size;
          pts.push(x, o + amp * Math.sin(freq * x + o));
        }
        canvas.stroke(pts, gap * 0.18, solid(color), 0.9);
      }
    }
  }
}

// Standard-normal quantiles at evenly spaced probabilities: drawing an index is much cheaper
// than Box–Muller for millions of noise samples, and the table is the same on every machine.
const NORMAL_BITS = 14;
const NORMAL_TABLE = (() => {
  const n = 1 << NORMAL_BITS;
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = inverseNormal((i + 0.5) / n);
  return t;
})();

/** Acklam's rational approximation of the normal quantile (relative error < 1.2e-9). */
function inverseNormal(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628274631];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormal(1 - p);
  const q = p - 0.5,
    r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** Exposure, colour cast, gamma, sensor noise and clipping to [0, 1]. */
export function finishImage(data: Float32Array, rng: Rng, noise: number, lighting: number): void {
  const gain = 1 + rng.gauss(0, 0.12 * lighting);
  const bias = rng.gauss(0, 0.04 * lighting);
  const cast = [rng.gauss(0, 0.04 * lighting), rng.gauss(0, 0.04 * lighting), rng.gauss(0, 0.04 * lighting)];
  const gamma = Math.exp(rng.gauss(0, 0.12 * lighting));
  const sd = Math.max(0, noise) * rng.uniform(0.5, 1.5);
  // gamma through a table with linear interpolation: pow per pixel dominated the cost
  const steps = 256;
  const lut = new Float32Array(steps + 2);
  for (let i = 0; i <= steps + 1; i++) lut[i] = Math.pow(Math.min(i / steps, 1), gamma);
  const mask = (1 << NORMAL_BITS) - 1;
  const n = data.length;
  for (let c = 0; c < 3; c++) {
    const off = bias + cast[c]!;
    let bits = 0,
      left = 0;
    for (let i = c; i < n; i += 3) {
      let v = data[i]!;
      v = v <= 0 ? 0 : v >= 1 ? 1 : v;
      const f = v * steps;
      const k = f | 0;
      v = (lut[k]! + (lut[k + 1]! - lut[k]!) * (f - k)) * gain + off;
      if (sd > 0) {
        if (left === 0) {
          bits = (rng.next() * 4294967296) >>> 0;
          left = 2;
        }
        v += sd * NORMAL_TABLE[bits & mask]!;
        bits >>>= 16;
        left--;
      }
      data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}
