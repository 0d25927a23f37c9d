/**
 * A tiny anti-aliased rasteriser over a Float32Array RGB image (HWC, values in [0, 1]).
 *
 * Fills use scanline coverage: several sub-scanlines per pixel row, each span adding its exact
 * horizontal overlap to a per-row coverage buffer, under the nonzero winding rule (so unions of
 * same-oriented pieces just work). Strokes use the distance to the polyline instead, which gives
 * round joins and caps for free and stays cheap because strokes are thin.
 */

export type RGB = readonly [number, number, number];

/** Colour as a function of pixel position: solid, linear ramp or radial ramp (clamped). */
export type Paint =
  | { readonly kind: 'solid'; readonly c: RGB }
  | {
      readonly kind: 'linear' | 'radial';
      readonly c0: RGB;
      readonly c1: RGB;
      readonly ox: number;
      readonly oy: number;
      /** linear: direction divided by its length², so t = (p − o)·u; radial: 1 / radius. */
      readonly ux: number;
      readonly uy: number;
    };

export function solid(c: RGB): Paint {
  return { kind: 'solid', c };
}

/** Ramp from c0 at (x0, y0) to c1 at (x1, y1), constant beyond both ends. */
export function linear(x0: number, y0: number, c0: RGB, x1: number, y1: number, c1: RGB): Paint {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const l2 = Math.max(dx * dx + dy * dy, 1e-9);
  return { kind: 'linear', c0, c1, ox: x0, oy: y0, ux: dx / l2, uy: dy / l2 };
}

/** c0 at the centre fading to c1 at `radius` and beyond. */
export function radial(cx: number, cy: number, radius: number, c0: RGB, c1: RGB): Paint {
  return { kind: 'radial', c0, c1, ox: cx, oy: cy, ux: 1 / Math.max(radius, 1e-9), uy: 0 };
}

const SUBROWS = 4;

let xsBuf = new Float64Array(64);
let dirBuf = new Int8Array(64);
let covBuf = new Float32Array(256);
let rowBuf = new Float32Array(256 * 4);
let edgeBuf = new Float64Array(512);
let edgeDir = new Int8Array(128);

function ensureCrossings(n: number): void {
  if (n <= xsBuf.length) return;
  let len = xsBuf.length;
  while (len < n) len *= 2;
  xsBuf = new Float64Array(len);
  dirBuf = new Int8Array(len);
}

export class Canvas {
  readonly data: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
    data?: Float32Array,
  ) {
    this.data = data ?? new Float32Array(width * height * 3);
    if (this.data.length !== width * height * 3) throw new Error('canvas buffer has the wrong length');
    if (covBuf.length < width + 4) covBuf = new Float32Array(width + 4);
    if (rowBuf.length < (width + 4) * 3) rowBuf = new Float32Array((width + 4) * 3);
  }

  /** Paints every pixel (no blending). */
  fill(paint: Paint): void {
    const { width, height, data } = this;
    for (let y = 0; y < height; y++) {
      this.paintRow(paint, y, 0, width - 1, rowBuf);
      data.set(rowBuf.subarray(0, width * 3), y * width * 3);
    }
  }

  /**
   * Fills one or more closed contours (flat [x0, y0, x1, y1, …] pixel coordinates, pixel
   * (i, j) covering [i, i+1) × [j, j+1)) with the nonzero rule.
   */
  fillPolygon(contours: readonly (readonly number[])[] | readonly number[], paint: Paint, alpha = 1): void {
    if (alpha <= 0) return;
    const list: readonly (readonly number[])[] =
      contours.length > 0 && typeof contours[0] === 'number' ? [contours as readonly number[]] : (contours as readonly (readonly number[])[]);
    let minX = Infinity,
      minY = Infinity,
      maxX = -Infinity,
      maxY = -Infinity;
    let edgeCount = 0;
    for (const c of list) {
      const n = c.length >> 1;
      if (n < 3) continue;
      edgeCount += n;
      for (let i = 0; i < c.length; i += 2) {
        const x = c[i]!,
          y = c[i + 1]!;
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
    if (edgeCount === 0) return;
    const { width, height } = this;
    const y0 = Math.max(0, Math.floor(minY));
    const y1 = Math.min(height - 1, Math.ceil(maxY) - 1);
    const bx0 = Math.max(0, Math.floor(minX));
    const bx1 = Math.min(width - 1, Math.ceil(maxX) - 1);
    if (y0 > y1 || bx0 > bx1) return;

    // Edge table with y ascending; horizontal edges never cross a sub-scanline.
    if (edgeBuf.length < edgeCount * 4) {
      edgeBuf = new Float64Array(edgeCount * 8);
      edgeDir = new Int8Array(edgeCount * 2);
    }
    const ex = edgeBuf,
      ed = edgeDir;
    let m = 0;
    for (const c of list) {
      const n = c.length >> 1;
      if (n < 3) continue;
      for (let i = 0; i < n; i++) {
        const j = (i + 1) % n;
        const ax = c[2 * i]!,
          ay = c[2 * i + 1]!,
          bx = c[2 * j]!,
          by = c[2 * j + 1]!;
        if (ay === by) continue;
        if (ay < by) {
          ex[4 * m] = ax;
          ex[4 * m + 1] = ay;
          ex[4 * m + 2] = bx;
          ex[4 * m + 3] = by;
          ed[m] = 1;
        } else {
          ex[4 * m] = bx;
          ex[4 * m + 1] = by;
          ex[4 * m + 2] = ax;
          ex[4 * m + 3] = ay;
          ed[m] = -1;
        }
        m++;
      }
    }
    ensureCrossings(m + 2);
    const xs = xsBuf,
      dirs = dirBuf,
      cov = covBuf;
    const w = 1 / SUBROWS;
    const data = this.data;

    for (let py = y0; py <= y1; py++) {
      let lo = bx1 + 1,
        hi = bx0 - 1;
      for (let s = 0; s < SUBROWS; s++) {
        const sy = py + (s + 0.5) * w;
        let k = 0;
        for (let e = 0; e < m; e++) {
          const ay = ex[4 * e + 1]!,
            by = ex[4 * e + 3]!;
          if (sy < ay || sy >= by) continue;
          const ax = ex[4 * e]!;
          const x = ax + ((sy - ay) * (ex[4 * e + 2]! - ax)) / (by - ay);
          // insertion sort keeps the handful of crossings ordered
          let p = k++;
          while (p > 0 && xs[p - 1]! > x) {
            xs[p] = xs[p - 1]!;
            dirs[p] = dirs[p - 1]!;
            p--;
          }
          xs[p] = x;
          dirs[p] = ed[e]!;
        }
        let winding = 0;
        for (let q = 0; q < k; q++) {
          const before = winding;
          winding += dirs[q]!;
          if (before === 0 && winding !== 0) {
            // span start; find where winding returns to zero
            const xa = xs[q]!;
            let r = q + 1;
            let wnd = winding;
            while (r < k) {
              wnd += dirs[r]!;
              if (wnd === 0) break;
              r++;
            }
            const xb = r < k ? xs[r]! : xs[k - 1]!;
            q = r;
            winding = 0;
            // accumulate [xa, xb) into the coverage row, clipped to the box
            const a = Math.max(xa, bx0),
              b = Math.min(xb, bx1 + 1);
            if (b <= a) continue;
            const ia = Math.floor(a),
              ib = Math.floor(b);
            if (ia < lo) lo = ia;
            if (Math.min(ib, bx1) > hi) hi = Math.min(ib, bx1);
            if (ia === ib) {
              cov[ia - bx0] += (b - a) * w;
            } else {
              cov[ia - bx0] += (ia + 1 - a) * w;
              for (let i = ia + 1; i < ib; i++) cov[i - bx0] += w;
              if (ib <= bx1) cov[ib - bx0] += (b - ib) * w;
            }
          }
        }
      }
      if (hi < lo) continue;
      this.paintRow(paint, py, lo, hi, rowBuf);
      let o = (py * width + lo) * 3;
      for (let x = lo; x <= hi; x++, o += 3) {
        let c = cov[x - bx0]!;
        cov[x - bx0] = 0;
        if (c <= 0) continue;
        if (c > 1) c = 1;
        const al = c * alpha;
        const r = (x - lo) * 3;
        data[o] = data[o]! + (rowBuf[r]! - data[o]!) * al;
        data[o + 1] = data[o + 1]! + (rowBuf[r + 1]! - data[o + 1]!) * al;
        data[o + 2] = data[o + 2]! + (rowBuf[r + 2]! - data[o + 2]!) * al;
      }
    }
  }

  /**
   * Strokes an open (or closed) polyline of flat pixel coordinates with a radius per vertex
   * (or one radius). Lines thinner than a pixel keep one pixel of width and fade instead.
   */
  stroke(points: readonly number[], radius: number | readonly number[], paint: Paint, alpha = 1, closed = false): void {
    const n = points.length >> 1;
    if (n < 1 || alpha <= 0) return;
    const radii = new Float64Array(n);
    for (let i = 0; i < n; i++) radii[i] = typeof radius === 'number' ? radius : radius[Math.min(i, radius.length - 1)]!;
    let minX = Infinity,
      minY = Infinity,
      maxX = -Infinity,
      maxY = -Infinity,
      maxR = 0;
    for (let i = 0; i < n; i++) {
      const x = points[2 * i]!,
        y = points[2 * i + 1]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      if (radii[i]! > maxR) maxR = radii[i]!;
    }
    const pad = Math.max(maxR, 0.5) + 1;
    const { width, height, data } = this;
    const x0 = Math.max(0, Math.floor(minX - pad));
    const x1 = Math.min(width - 1, Math.ceil(maxX + pad));
    const y0 = Math.max(0, Math.floor(minY - pad));
    const y1 = Math.min(height - 1, Math.ceil(maxY + pad));
    if (x0 > x1 || y0 > y1) return;
    const segs = closed && n > 2 ? n : Math.max(n - 1, 1);
    for (let py = y0; py <= y1; py++) {
      const cy = py + 0.5;
      let painted = false;
      for (let px = x0; px <= x1; px++) {
        const cx = px + 0.5;
        let best = Infinity;
        let bestR = 0.5;
        for (let s = 0; s < segs; s++) {
          const i = s,
            j = n === 1 ? 0 : (s + 1) % n;
          const ax = points[2 * i]!,
            ay = points[2 * i + 1]!;
          const bx = points[2 * j]!,
            by = points[2 * j + 1]!;
          const dx = bx - ax,
            dy = by - ay;
          const l2 = dx * dx + dy * dy;
          let t = l2 > 0 ? ((cx - ax) * dx + (cy - ay) * dy) / l2 : 0;
          if (t < 0) t = 0;
          else if (t > 1) t = 1;
          const qx = ax + t * dx - cx,
            qy = ay + t * dy - cy;
          const r = radii[i]! + (radii[j]! - radii[i]!) * t;
          const re = r < 0.5 ? 0.5 : r;
          const d = Math.sqrt(qx * qx + qy * qy) - re;
          if (d < best) {
            best = d;
            bestR = r;
          }
        }
        let c = 0.5 - best;
        if (c <= 0) continue;
        if (c > 1) c = 1;
        if (bestR < 0.5) c *= Math.max(bestR, 0) * 2;
        const al = c * alpha;
        if (!painted) {
          this.paintRow(paint, py, x0, x1, rowBuf);
          painted = true;
        }
        const o = (py * width + px) * 3;
        const r = (px - x0) * 3;
        data[o] = data[o]! + (rowBuf[r]! - data[o]!) * al;
        data[o + 1] = data[o + 1]! + (rowBuf[r + 1]! - data[o + 1]!) * al;
        data[o + 2] = data[o + 2]! + (rowBuf[r + 2]! - data[o + 2]!) * al;
      }
    }
  }

  /** Colours of pixels lo..hi of row y into out[0..]. */
  private paintRow(paint: Paint, y: number, lo: number, hi: number, out: Float32Array): void {
    const cy = y + 0.5;
    if (paint.kind === 'solid') {
      const [r, g, b] = paint.c;
      for (let x = lo, o = 0; x <= hi; x++, o += 3) {
        out[o] = r;
        out[o + 1] = g;
        out[o + 2] = b;
      }
      return;
    }
    const { c0, c1, ox, oy, ux, uy } = paint;
    const dr = c1[0] - c0[0],
      dg = c1[1] - c0[1],
      db = c1[2] - c0[2];
    for (let x = lo, o = 0; x <= hi; x++, o += 3) {
      const cx = x + 0.5;
      let t: number;
      if (paint.kind === 'linear') t = (cx - ox) * ux + (cy - oy) * uy;
      else t = Math.sqrt((cx - ox) * (cx - ox) + (cy - oy) * (cy - oy)) * ux;
      if (t < 0) t = 0;
      else if (t > 1) t = 1;
      out[o] = c0[0] + dr * t;
      out[o + 1] = c0[1] + dg * t;
      out[o + 2] = c0[2] + db * t;
    }
  }
}

/** Closed polygon approximating an ellipse (flat coordinates), clockwise on screen (y down). */
export function ellipsePoints(cx: number, cy: number, rx: number, ry: number, rot = 0, n = 32): number[] {
  const out: number[] = [];
  const c = Math.cos(rot),
    s = Math.sin(rot);
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    const x = rx * Math.cos(a),
      y = ry * Math.sin(a);
    out.push(cx + c * x - s * y, cy + s * x + c * y);
  }
  return out;
}

/** Twice the signed area; positive for polygons that run clockwise on screen (y down). */
export function signedArea2(p: readonly number[]): number {
  let a = 0;
  const n = p.length >> 1;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    a += p[2 * i]! * p[2 * j + 1]! - p[2 * j]! * p[2 * i + 1]!;
  }
  return a;
}

/** Sutherland–Hodgman: the part of `subject` inside the convex polygon `clip`. */
export function clipConvex(subject: readonly number[], clip: readonly number[]): number[] {
  let out: number[] = subject.slice();
  const n = clip.length >> 1;
  const orient = signedArea2(clip) >= 0 ? 1 : -1;
  for (let i = 0; i < n && out.length >= 6; i++) {
    const j = (i + 1) % n;
    const ax = clip[2 * i]!,
      ay = clip[2 * i + 1]!,
      bx = clip[2 * j]!,
      by = clip[2 * j + 1]!;
    const ux = orient * (bx - ax),
      uy = orient * (by - ay);
    const input = out;
    out = [];
    const m = input.length >> 1;
    for (let k = 0; k < m; k++) {
      const l = (k + 1) % m;
      const px = input[2 * k]!,
        py = input[2 * k + 1]!,
        qx = input[2 * l]!,
        qy = input[2 * l + 1]!;
      const sp = ux * (py - ay) - uy * (px - ax),
        sq = ux * (qy - ay) - uy * (qx - ax);
      if (sp >= 0) out.push(px, py);
      if (sp >= 0 !== sq >= 0) {
        const t = sp / (sp - sq);
        out.push(px + (qx - px) * t, py + (qy - py) * t);
      }
    }
  }
  return out;
}
