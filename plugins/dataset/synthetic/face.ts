/**
 * A parametric cartoon face. Geometry lives in face units (origin between the cheeks, y down,
 * half the face height ≈ 1); a pose maps face units to pixels. Identity fixes the proportions
 * and colours; an expression is a small vector of muscle-like cues (brow height and slant, lid
 * opening, mouth curvature/opening/shape, upper-lip raise, nose wrinkle, one-sided corner).
 */
import type { Expression } from '../../../src/data/expressions.ts';
import { Canvas, clipConvex, ellipsePoints, linear, radial, solid, type RGB } from './raster.ts';
import type { Rng } from '../../../src/core/rng.ts';

export interface Identity {
  readonly faceW: number;
  readonly faceUp: number;
  readonly faceLow: number;
  /** Narrowing of the lower face towards the chin. */
  readonly chin: number;
  readonly skin: RGB;
  readonly hair: RGB;
  /** 0 short, 1 fringe, 2 long, 3 shaved, 4 voluminous / curly. */
  readonly hairStyle: 0 | 1 | 2 | 3 | 4;
  readonly hairVolume: number;
  readonly hairline: number;
  readonly fringeTilt: number;
  readonly eyeSep: number;
  readonly eyeY: number;
  readonly eyeW: number;
  readonly eyeH: number;
  readonly eyeLow: number;
  readonly eyeTilt: number;
  readonly iris: RGB;
  readonly browGap: number;
  readonly browThick: number;
  readonly browColor: RGB;
  readonly noseY: number;
  readonly noseW: number;
  readonly mouthY: number;
  readonly mouthW: number;
  readonly lipU: number;
  readonly lipL: number;
  readonly lip: RGB;
  readonly clothes: RGB;
  readonly beard: number;
  /** Resting-face offsets: some people look a little sad or amused when neutral. */
  readonly restCurve: number;
  readonly restBrow: number;
}

/** Expression cues; zero is the neutral face. */
export interface ExpressionParams {
  browRaise: number;
  browInner: number;
  browArch: number;
  browTogether: number;
  eyeOpen: number;
  lowerLid: number;
  mouthCurve: number;
  mouthOpen: number;
  mouthWidth: number;
  mouthRound: number;
  upperLip: number;
  teeth: number;
  lowerTeeth: number;
  lipPress: number;
  /** Extra lift of the left / right lip corner (contempt is one of them). */
  cornerL: number;
  cornerR: number;
  noseWrinkle: number;
  cheek: number;
  jawDrop: number;
  gazeX: number;
  gazeY: number;
}

export interface Pose {
  readonly cx: number;
  readonly cy: number;
  /** Pixels per face unit. */
  readonly scale: number;
  /** In-plane rotation, radians. */
  readonly rot: number;
  /** Head turn in [-1, 1]: squeezes the face and slides the features sideways. */
  readonly yaw: number;
}

const ZERO: ExpressionParams = {
  browRaise: 0,
  browInner: 0,
  browArch: 0,
  browTogether: 0,
  eyeOpen: 0,
  lowerLid: 0,
  mouthCurve: 0,
  mouthOpen: 0,
  mouthWidth: 0,
  mouthRound: 0,
  upperLip: 0,
  teeth: 0,
  lowerTeeth: 0,
  lipPress: 0,
  cornerL: 0,
  cornerR: 0,
  noseWrinkle: 0,
  cheek: 0,
  jawDrop: 0,
  gazeX: 0,
  gazeY: 0,
};

/** Full-intensity cue targets per class (the neutral face is all zeros). */
const TARGETS: Readonly<Record<Expression, Partial<ExpressionParams>>> = {
  neutral: {},
  happiness: { mouthCurve: 1, mouthWidth: 0.3, mouthOpen: 0.35, teeth: 1, lowerLid: 0.55, eyeOpen: -0.2, cheek: 1, browRaise: 0.1 },
  sadness: { mouthCurve: -0.9, mouthWidth: -0.1, browInner: 1, browRaise: 0.1, eyeOpen: -0.35, lowerLid: 0.05, gazeY: 0.6, lipPress: 0.3 },
  surprise: { browRaise: 1, browArch: 0.8, eyeOpen: 0.9, mouthOpen: 1, mouthRound: 1, mouthWidth: -0.2, jawDrop: 1 },
  fear: {
    browRaise: 0.7,
    browInner: 0.8,
    browTogether: 0.7,
    browArch: -0.3,
    eyeOpen: 0.8,
    mouthOpen: 0.45,
    mouthWidth: 0.45,
    mouthCurve: -0.45,
    teeth: 0.7,
    lowerTeeth: 0.7,
  },
  disgust: { noseWrinkle: 1, upperLip: 1, browRaise: -0.5, browInner: -0.3, lowerLid: 0.5, eyeOpen: -0.35, mouthCurve: -0.5, mouthOpen: 0.12, teeth: 0.6 },
  anger: { browRaise: -0.7, browInner: -1, browTogether: 0.9, eyeOpen: -0.1, lowerLid: 0.45, mouthCurve: -0.35, lipPress: 1, mouthWidth: -0.15 },
  contempt: { cornerL: 1, lowerLid: 0.15, eyeOpen: -0.15, browRaise: 0.05 },
};

const SKIN_LIGHT: RGB = [0.97, 0.82, 0.71];
const SKIN_DARK: RGB = [0.35, 0.22, 0.15];
const HAIR: readonly RGB[] = [
  [0.08, 0.06, 0.05],
  [0.2, 0.12, 0.07],
  [0.38, 0.24, 0.12],
  [0.72, 0.56, 0.3],
  [0.55, 0.25, 0.1],
  [0.6, 0.6, 0.6],
  [0.14, 0.1, 0.08],
];
const IRIS: readonly RGB[] = [
  [0.3, 0.18, 0.08],
  [0.2, 0.12, 0.06],
  [0.25, 0.4, 0.6],
  [0.3, 0.45, 0.3],
  [0.12, 0.1, 0.08],
];

export function mixRgb(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

export function scaleRgb(c: RGB, k: number): RGB {
  return [clamp01(c[0] * k), clamp01(c[1] * k), clamp01(c[2] * k)];
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function jitterRgb(rng: Rng, c: RGB, sd: number): RGB {
  return [clamp01(c[0] + rng.gauss(0, sd)), clamp01(c[1] + rng.gauss(0, sd)), clamp01(c[2] + rng.gauss(0, sd))];
}

export function sampleIdentity(rng: Rng): Identity {
  const skin = jitterRgb(rng, mixRgb(SKIN_LIGHT, SKIN_DARK, Math.pow(rng.next(), 1.3)), 0.025);
  const hair = rng.chance(0.08) ? jitterRgb(rng, skin, 0.05) : jitterRgb(rng, rng.pick(HAIR), 0.03);
  const faceW = rng.uniform(0.68, 0.86);
  const eyeSep = rng.uniform(0.28, 0.36) * (faceW / 0.77);
  const eyeW = rng.uniform(0.105, 0.135);
  return {
    faceW,
    faceUp: rng.uniform(0.92, 1.06),
    faceLow: rng.uniform(0.98, 1.16),
    chin: rng.uniform(0.05, 0.38),
    skin,
    hair,
    hairStyle: rng.weighted([3, 2, 3, 1, 1]) as 0 | 1 | 2 | 3 | 4,
    hairVolume: rng.uniform(0.9, 1.15),
    hairline: rng.uniform(-0.62, -0.44),
    fringeTilt: rng.uniform(-0.25, 0.25),
    eyeSep: Math.max(eyeSep, eyeW + 0.12),
    eyeY: rng.uniform(-0.1, 0.04),
    eyeW,
    eyeH: rng.uniform(0.045, 0.062),
    eyeLow: rng.uniform(0.032, 0.045),
    eyeTilt: rng.uniform(-0.05, 0.12),
    iris: jitterRgb(rng, rng.pick(IRIS), 0.03),
    browGap: rng.uniform(0.15, 0.2),
    browThick: rng.uniform(0.022, 0.036),
    browColor: scaleRgb(mixRgb(hair, [0.1, 0.07, 0.05], 0.4), 0.9),
    noseY: rng.uniform(0.36, 0.46),
    noseW: rng.uniform(0.085, 0.12),
    mouthY: rng.uniform(0.63, 0.71),
    mouthW: rng.uniform(0.19, 0.25),
    lipU: rng.uniform(0.025, 0.045),
    lipL: rng.uniform(0.035, 0.06),
    lip: jitterRgb(rng, mixRgb(skin, [0.72, 0.3, 0.32], rng.uniform(0.3, 0.6)), 0.02),
    clothes: [rng.next(), rng.next(), rng.next()],
    beard: rng.chance(0.12) ? rng.uniform(0.12, 0.35) : 0,
    restCurve: rng.gauss(0, 0.1),
    restBrow: rng.gauss(0, 0.1),
  };
}

/** Cues for `expression` at `intensity` (0 = neutral, 1 = full), with per-image jitter. */
export function sampleExpression(expression: Expression, intensity: number, rng: Rng, id: Identity): ExpressionParams {
  const p: ExpressionParams = { ...ZERO };
  const target = TARGETS[expression];
  for (const key of Object.keys(target) as (keyof ExpressionParams)[]) p[key] = target[key]! * intensity;
  if (expression === 'anger' && rng.chance(0.4)) {
    // shouting / bared teeth instead of pressed lips
    p.lipPress = 0;
    p.mouthOpen = 0.45 * intensity;
    p.teeth = 1;
    p.lowerTeeth = 1;
    p.mouthWidth = 0.1 * intensity;
    p.mouthRound = 0.2 * intensity;
  }
  if (expression === 'happiness' && rng.chance(0.35)) {
    // closed-mouth smile
    p.mouthOpen = 0.03;
    p.teeth = 0;
  }
  if (expression === 'contempt' && rng.chance(0.5)) {
    p.cornerR = p.cornerL;
    p.cornerL = 0;
  }
  p.mouthCurve += id.restCurve;
  p.browRaise += id.restBrow;
  const jitter = 0.08;
  p.browRaise += rng.gauss(0, jitter);
  p.browInner += rng.gauss(0, jitter);
  p.browArch += rng.gauss(0, jitter);
  p.eyeOpen += rng.gauss(0, jitter);
  p.lowerLid = Math.max(0, p.lowerLid + rng.gauss(0, jitter * 0.5));
  p.mouthCurve += rng.gauss(0, jitter);
  p.mouthOpen = Math.max(0, p.mouthOpen + rng.gauss(0, jitter * 0.4));
  p.mouthWidth += rng.gauss(0, jitter);
  p.gazeX = rng.gauss(0, 0.35);
  p.gazeY += rng.gauss(0, 0.2);
  return p;
}

export function samplePose(rng: Rng, size: number, amount: number): Pose {
  const a = Math.max(0, amount);
  const scale = size * rng.uniform(0.4 - 0.05 * a, 0.4 + 0.04 * a);
  const rot = Math.max(-0.45, Math.min(0.45, rng.gauss(0, 0.12 * a)));
  return {
    cx: size * (0.5 + rng.uniform(-0.07, 0.07) * a),
    cy: size * (0.5 + rng.uniform(-0.05, 0.06) * a),
    scale,
    rot,
    yaw: Math.max(-0.8, Math.min(0.8, rng.gauss(0, 0.3 * a))),
  };
}

/** Maps face units to pixels, with features (depth > 0) sliding with yaw. */
export class FaceFrame {
  private readonly c: number;
  private readonly s: number;
  private readonly squeeze: number;

  constructor(readonly pose: Pose) {
    this.c = Math.cos(pose.rot);
    this.s = Math.sin(pose.rot);
    this.squeeze = 1 - 0.25 * Math.abs(pose.yaw);
  }

  /** Face units → pixels for a flat point list; `depth` 0 is the outline, 1 the features. */
  map(points: readonly number[], depth = 1): number[] {
    const out = new Array<number>(points.length);
    const { cx, cy, scale, yaw } = this.pose;
    for (let i = 0; i < points.length; i += 2) {
      const x = points[i]!,
        y = points[i + 1]!;
      const xw = this.squeeze * (x * (1 - 0.35 * yaw * x * depth) + yaw * 0.2 * depth);
      out[i] = cx + scale * (this.c * xw - this.s * y);
      out[i + 1] = cy + scale * (this.s * xw + this.c * y);
    }
    return out;
  }

  /** A length in face units → pixels. */
  px(length: number): number {
    return length * this.pose.scale * (0.5 + 0.5 * this.squeeze);
  }
}

export type Box = [number, number, number, number];

export function faceOutline(id: Identity, jawDrop: number, n = 48): number[] {
  const out: number[] = [];
  const low = id.faceLow + jawDrop * 0.07;
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    const c = Math.cos(a),
      s = Math.sin(a);
    if (s > 0) out.push(id.faceW * c * (1 - id.chin * s * s * (1 - 0.4 * s * s)), low * s);
    else out.push(id.faceW * c * (1 + 0.04 * s), id.faceUp * s);
  }
  return out;
}

/** Samples a quadratic Bézier (face units) into a flat polyline. */
function bezier(x0: number, y0: number, x1: number, y1: number, x2: number, y2: number, n = 8): number[] {
  const out: number[] = [];
  for (let i = 0; i <= n; i++) {
    const t = i / n,
      u = 1 - t;
    out.push(u * u * x0 + 2 * u * t * x1 + t * t * x2, u * u * y0 + 2 * u * t * y1 + t * t * y2);
  }
  return out;
}

export interface DrawnFace {
  /** Tight box of the face outline in pixels, clipped to the image. */
  readonly box: Box;
  readonly frame: FaceFrame;
}

/** Draws body, head, hair and features; returns the face box. */
export function drawFace(canvas: Canvas, id: Identity, e: ExpressionParams, pose: Pose, rng: Rng): DrawnFace {
  const f = new FaceFrame(pose);
  const skin = id.skin;
  const light = pose.yaw * 0.6 + rng.uniform(-0.7, 0.7);

  // body and neck
  const cloth = linear(pose.cx - pose.scale, 0, scaleRgb(id.clothes, 1.1), pose.cx + pose.scale, 0, scaleRgb(id.clothes, 0.75));
  canvas.fillPolygon(f.map(ellipsePoints(0, 1.9, 1.45, 0.72, 0, 40), 0), cloth);
  canvas.fillPolygon(f.map([-0.3, 0.5, 0.3, 0.5, 0.36, 1.35, -0.36, 1.35], 0), solid(scaleRgb(skin, 0.78)));
  canvas.fillPolygon(f.map(bezier(-0.4, 1.3, 0, 1.55, 0.4, 1.3, 8).concat([0.36, 1.2, -0.36, 1.2]), 0), solid(scaleRgb(skin, 0.7)));

  const hairPts = (rx: number, ry: number, yBottom: number) => {
    const pts: number[] = [];
    for (let i = 0; i <= 20; i++) {
      const a = Math.PI + (Math.PI * i) / 20;
      pts.push(rx * Math.cos(a), -0.04 + ry * Math.sin(a));
    }
    pts.push(rx, yBottom, -rx, yBottom);
    return pts;
  };
  if (id.hairStyle === 2) {
    const back = hairPts(id.faceW * 1.16 * id.hairVolume, id.faceUp * 1.14, 0.6 + 0.5 * id.hairVolume);
    canvas.fillPolygon(f.map(back, 0), solid(scaleRgb(id.hair, 0.8)));
  } else if (id.hairStyle === 4) {
    canvas.fillPolygon(f.map(ellipsePoints(0, -0.3, id.faceW * 1.35 * id.hairVolume, 0.95 * id.hairVolume, 0, 40), 0), solid(scaleRgb(id.hair, 0.85)));
  }

  // ears
  const earY = id.eyeY + 0.16;
  for (const sg of [-1, 1]) {
    canvas.fillPolygon(f.map(ellipsePoints(sg * id.faceW * 0.98, earY, 0.085, 0.16, sg * 0.15, 20), 0), solid(scaleRgb(skin, 0.85)));
  }

  // head with a side light
  const outline = f.map(faceOutline(id, e.jawDrop), 0);
  const ls = Math.sign(light) || 1;
  const [lx0, ly0] = f.map([-ls * id.faceW * 1.1, -0.3], 0);
  const [lx1, ly1] = f.map([ls * id.faceW * 1.1, 0.3], 0);
  canvas.fillPolygon(outline, linear(lx0!, ly0!, scaleRgb(skin, 1.06), lx1!, ly1!, scaleRgb(skin, 0.84 - 0.08 * Math.abs(light))));
  if (id.beard > 0) {
    const beard = f.map(beardPoints(id, e), 0);
    canvas.fillPolygon(beard, solid(scaleRgb(mixRgb(skin, id.hair, 0.6), 0.9)), id.beard);
  }

  // cheeks lift and flush when smiling
  if (e.cheek > 0.05) {
    for (const sg of [-1, 1]) {
      const [cx, cy] = f.map([sg * (id.eyeSep + 0.04), id.eyeY + 0.3 - 0.05 * e.cheek], 1);
      canvas.fillPolygon(
        f.map(ellipsePoints(sg * (id.eyeSep + 0.04), id.eyeY + 0.3 - 0.05 * e.cheek, 0.14, 0.09, 0, 20), 1),
        radial(cx!, cy!, f.px(0.14), mixRgb(skin, [0.9, 0.45, 0.45], 0.35), skin),
        Math.min(1, e.cheek) * 0.6,
      );
    }
  }

  drawHair(canvas, f, id);
  drawBrows(canvas, f, id, e);
  drawEyes(canvas, f, id, e, light);
  drawNose(canvas, f, id, e, light);
  drawMouth(canvas, f, id, e);

  let x1 = Infinity,
    y1 = Infinity,
    x2 = -Infinity,
    y2 = -Infinity;
  for (let i = 0; i < outline.length; i += 2) {
    x1 = Math.min(x1, outline[i]!);
    x2 = Math.max(x2, outline[i]!);
    y1 = Math.min(y1, outline[i + 1]!);
    y2 = Math.max(y2, outline[i + 1]!);
  }
  const lim = (v: number, hi: number) => Math.max(0, Math.min(hi, v));
  return { box: [lim(x1, canvas.width), lim(y1, canvas.height), lim(x2, canvas.width), lim(y2, canvas.height)], frame: f };
}

function beardPoints(id: Identity, e: ExpressionParams): number[] {
  // jaw from one sideburn round the chin to the other, then back over the upper lip
  const out: number[] = [];
  const low = id.faceLow + e.jawDrop * 0.07;
  const a0 = 0.25,
    n = 24;
  for (let i = 0; i <= n; i++) {
    const a = a0 + ((Math.PI - 2 * a0) * i) / n;
    const c = Math.cos(a),
      s = Math.sin(a);
    out.push(id.faceW * c * (1 - id.chin * s * s * (1 - 0.4 * s * s)), low * s);
  }
  const x = id.mouthW + 0.1;
  out.push(
    -id.faceW * 0.85,
    id.mouthY - 0.2,
    -x,
    id.mouthY - 0.1,
    -0.05,
    id.mouthY - 0.13,
    0.05,
    id.mouthY - 0.13,
    x,
    id.mouthY - 0.1,
    id.faceW * 0.85,
    id.mouthY - 0.2,
  );
  return out;
}

function drawHair(canvas: Canvas, f: FaceFrame, id: Identity): void {
  if (id.hairStyle === 3) return;
  const rx = id.faceW * (id.hairStyle === 0 ? 1.04 : 1.07),
    ry = id.faceUp * (id.hairStyle === 0 ? 1.06 + 0.05 * id.hairVolume : 1.12);
  const side = id.eyeY - (id.hairStyle === 0 ? 0.3 : 0.12);
  const pts: number[] = [];
  for (let i = 0; i <= 24; i++) {
    const a = Math.PI + (Math.PI * i) / 24;
    pts.push(rx * Math.cos(a), -0.03 + ry * Math.sin(a));
  }
  pts.push(rx * 0.99, side);
  // hairline back across the forehead, right to left
  const n = 16;
  for (let i = n; i >= 0; i--) {
    const t = (2 * i) / n - 1;
    const x = t * id.faceW * 0.93;
    let y = id.hairline + (side - id.hairline) * Math.pow(Math.abs(t), 3);
    if (id.hairStyle === 1) y += 0.18 * (1 - Math.abs(t)) * (1 + id.fringeTilt * 4 * t) * 0.6 + 0.04;
    pts.push(x, y);
  }
  const [hx, hy] = f.map([0, -0.9], 0);
  canvas.fillPolygon(f.map(pts, 0), radial(hx!, hy!, f.px(1.0), scaleRgb(id.hair, 1.25), scaleRgb(id.hair, 0.85)));
}

function drawBrows(canvas: Canvas, f: FaceFrame, id: Identity, e: ExpressionParams): void {
  for (const sg of [-1, 1]) {
    const inX = sg * (id.eyeSep - id.eyeW * 0.95 - 0.06 * e.browTogether);
    const outX = sg * (id.eyeSep + id.eyeW * 1.3);
    const base = id.eyeY - id.browGap - 0.085 * e.browRaise;
    const inY = base - 0.075 * e.browInner + 0.01;
    const outY = base + 0.02 + 0.02 * e.browInner;
    const arch = 0.035 + 0.035 * e.browArch;
    const midX = (inX + outX) / 2 + sg * 0.02;
    const pts = f.map(bezier(inX, inY, midX, (inY + outY) / 2 - 2 * arch, outX, outY, 8), 1);
    const r0 = f.px(id.browThick),
      r1 = f.px(id.browThick * 0.5);
    const radii = Array.from({ length: 9 }, (_, i) => r0 + ((r1 - r0) * i) / 8);
    canvas.stroke(pts, radii, solid(id.browColor), 0.95);
  }
  // frown lines between the brows
  const frown = Math.max(0, -e.browInner) * Math.max(0, e.browTogether);
  if (frown > 0.1) {
    for (const sg of [-1, 1]) {
      const x = sg * 0.035;
      canvas.stroke(
        f.map([x, id.eyeY - id.browGap + 0.02, x * 0.7, id.eyeY - id.browGap + 0.1], 1),
        f.px(0.008),
        solid(scaleRgb(id.skin, 0.6)),
        Math.min(0.8, frown),
      );
    }
  }
  // forehead lines when the brows go up
  if (e.browRaise > 0.4) {
    for (let k = 0; k < 2; k++) {
      const y = id.eyeY - id.browGap - 0.14 - 0.07 * k;
      canvas.stroke(
        f.map(bezier(-0.2, y + 0.01, 0, y - 0.025, 0.2, y + 0.01, 6), 1),
        f.px(0.007),
        solid(scaleRgb(id.skin, 0.7)),
        Math.min(0.7, e.browRaise - 0.4),
      );
    }
  }
}

function drawEyes(canvas: Canvas, f: FaceFrame, id: Identity, e: ExpressionParams, light: number): void {
  const open = Math.max(0.15, 1 + 0.9 * e.eyeOpen - 0.35 * e.lowerLid);
  const low = Math.max(0.1, 1 - 0.85 * e.lowerLid + 0.3 * Math.max(0, e.eyeOpen));
  for (const sg of [-1, 1]) {
    const ex = sg * id.eyeSep,
      ey = id.eyeY;
    const w = id.eyeW * (1 + 0.06 * e.eyeOpen);
    const u = id.eyeH * open;
    const l = id.eyeLow * low;
    const tilt = id.eyeTilt - 0.1 * Math.max(0, e.browInner) * (e.eyeOpen < 0.3 ? 1 : 0);
    const n = 12;
    const upper: number[] = [];
    const lower: number[] = [];
    for (let i = 0; i <= n; i++) {
      const t = (2 * i) / n - 1;
      const x = ex + sg * t * w;
      const off = -tilt * t * w;
      upper.push(x, ey + off - u * Math.pow(1 - t * t, 0.75));
      lower.push(x, ey + off + l * Math.pow(1 - t * t, 0.9) - 0.012 * e.lowerLid * (1 - t * t));
    }
    const shape: number[] = upper.slice();
    for (let i = n; i >= 0; i--) shape.push(lower[2 * i]!, lower[2 * i + 1]!);
    const shapePx = f.map(shape, 1);
    // upper-lid crease and socket shadow
    const crease = f.map(
      upper.map((v, i) => (i % 2 ? v - 0.03 - 0.4 * u : ex + (v - ex) * 1.05)),
      1,
    );
    canvas.stroke(crease, f.px(0.01), solid(scaleRgb(id.skin, 0.7)), 0.5);
    canvas.fillPolygon(shapePx, solid([0.95, 0.94, 0.9]));
    const ir = id.eyeH * 0.95;
    const gx = ex + e.gazeX * w * 0.35,
      gy = ey + e.gazeY * u * 0.25 - 0.004;
    const iris = clipConvex(f.map(ellipsePoints(gx, gy, ir, ir, 0, 20), 1), shapePx);
    if (iris.length >= 6) canvas.fillPolygon(iris, solid(id.iris));
    const pupil = clipConvex(f.map(ellipsePoints(gx, gy, ir * 0.45, ir * 0.45, 0, 14), 1), shapePx);
    if (pupil.length >= 6) canvas.fillPolygon(pupil, solid([0.03, 0.03, 0.03]));
    const hl = clipConvex(f.map(ellipsePoints(gx - ir * 0.3 * Math.sign(light || 1), gy - ir * 0.35, ir * 0.22, ir * 0.22, 0, 10), 1), shapePx);
    if (hl.length >= 6) canvas.fillPolygon(hl, solid([1, 1, 1]), 0.85);
    const lidR = f.px(0.016);
    canvas.stroke(f.map(upper, 1), [lidR * 0.6, ...Array(n - 1).fill(lidR), lidR * 1.3], solid([0.08, 0.05, 0.04]), 0.95);
    canvas.stroke(f.map(lower, 1), f.px(0.007), solid(scaleRgb(id.skin, 0.55)), 0.7);
    // lower lid bulge of a squint
    if (e.lowerLid > 0.25) {
      const bulge = lower.map((v, i) => (i % 2 ? v + 0.03 : v));
      canvas.stroke(f.map(bulge, 1), f.px(0.008), solid(scaleRgb(id.skin, 0.7)), Math.min(0.8, e.lowerLid));
    }
  }
}

function drawNose(canvas: Canvas, f: FaceFrame, id: Identity, e: ExpressionParams, light: number): void {
  const wr = Math.max(0, e.noseWrinkle);
  const ny = id.noseY - 0.035 * wr;
  const nw = id.noseW * (1 + 0.25 * wr);
  const dark = solid(scaleRgb(id.skin, 0.5));
  // bridge shadow on the unlit side
  const sg = light > 0 ? -1 : 1;
  canvas.stroke(
    f.map(bezier(sg * 0.045, id.eyeY + 0.06, sg * 0.06, (id.eyeY + ny) / 2, sg * 0.07, ny - 0.06, 6), 1.3),
    f.px(0.012),
    solid(scaleRgb(id.skin, 0.72)),
    0.5,
  );
  // wings and tip
  canvas.stroke(f.map(bezier(-nw, ny - 0.03, -nw * 1.1, ny + 0.03, -nw * 0.45, ny + 0.025, 6), 1.3), f.px(0.012), dark, 0.8);
  canvas.stroke(f.map(bezier(nw, ny - 0.03, nw * 1.1, ny + 0.03, nw * 0.45, ny + 0.025, 6), 1.3), f.px(0.012), dark, 0.8);
  canvas.stroke(f.map(bezier(-nw * 0.45, ny + 0.025, 0, ny + 0.05, nw * 0.45, ny + 0.025, 6), 1.3), f.px(0.01), solid(scaleRgb(id.skin, 0.65)), 0.6);
  for (const s of [-1, 1]) {
    const nostril = ellipsePoints(s * nw * 0.5, ny + 0.012, 0.028 * (1 + 0.3 * wr), 0.013 * (1 + 0.4 * wr), s * 0.3, 12);
    canvas.fillPolygon(f.map(nostril, 1.3), solid(scaleRgb(id.skin, 0.3)), 0.85);
  }
  if (wr > 0.15) {
    // wrinkles across the bridge
    const a = Math.min(0.9, wr * 1.1);
    for (let k = 0; k < 3; k++) {
      const y = id.eyeY + 0.09 + 0.045 * k;
      canvas.stroke(f.map(bezier(-0.06, y + 0.012, 0, y - 0.012, 0.06, y + 0.012, 4), 1.2), f.px(0.009), solid(scaleRgb(id.skin, 0.55)), a);
    }
  }
  // nasolabial folds of a smile or a sneer
  const fold = Math.max(e.cheek * 0.8, wr, Math.max(0, e.upperLip));
  if (fold > 0.15) {
    const mw = id.mouthW * (1 + 0.3 * e.mouthWidth);
    for (const s of [-1, 1]) {
      canvas.stroke(
        f.map(bezier(s * (nw + 0.03), ny - 0.03, s * (mw + 0.1), id.mouthY - 0.12, s * (mw + 0.06), id.mouthY + 0.06, 8), 1),
        f.px(0.011),
        solid(scaleRgb(id.skin, 0.62)),
        Math.min(0.85, fold),
      );
    }
  }
}

function drawMouth(canvas: Canvas, f: FaceFrame, id: Identity, e: ExpressionParams): void {
  const round = Math.max(0, Math.min(1, e.mouthRound));
  const mw = id.mouthW * Math.max(0.5, 1 + 0.32 * e.mouthWidth) * (1 - 0.42 * round);
  const cy = id.mouthY + 0.05 * e.jawDrop + 0.02 * Math.max(0, e.mouthOpen);
  const lift = 0.1;
  const offL = -lift * e.mouthCurve - 0.12 * e.cornerL;
  const offR = -lift * e.mouthCurve - 0.12 * e.cornerR;
  const h = 0.22 * Math.max(0, e.mouthOpen) * (1 + 0.4 * round);
  const press = Math.max(0, Math.min(1, e.lipPress));
  const exp = 1 - 0.55 * round;
  const n = 16;
  const pull = (t: number) => (t < 0 ? 1 + 0.18 * e.cornerL : 1 + 0.18 * e.cornerR);
  const mid = (t: number) => cy + (t < 0 ? offL : offR) * t * t;
  const prof = (t: number) => Math.pow(Math.max(0, 1 - t * t), exp);
  const ui: number[] = [],
    li: number[] = [],
    uo: number[] = [],
    lo: number[] = [];
  const raise = 0.06 * Math.max(0, e.upperLip);
  for (let i = 0; i <= n; i++) {
    const t = (2 * i) / n - 1;
    const x = t * mw * pull(t);
    const m = mid(t);
    const open = h * prof(t);
    const yUi = m - 0.42 * open - raise * (1 - Math.pow(Math.abs(t), 4));
    const yLi = m + 0.58 * open;
    const thinU = id.lipU * (1 - 0.6 * press),
      thinL = id.lipL * (1 - 0.6 * press);
    const bow = 0.35 * thinU * Math.exp(-Math.pow((Math.abs(t) - 0.28) / 0.2, 2));
    ui.push(x, yUi);
    li.push(x, yLi);
    uo.push(x, yUi - thinU * (1 - 0.75 * t * t) - bow);
    lo.push(x, yLi + thinL * (1 - 0.85 * t * t));
  }
  const lips = uo.slice();
  for (let i = n; i >= 0; i--) lips.push(lo[2 * i]!, lo[2 * i + 1]!);
  const [tx, ty] = f.map([0, cy - 0.05], 1);
  const [bx, by] = f.map([0, cy + 0.08], 1);
  canvas.fillPolygon(f.map(lips, 1), linear(tx!, ty!, scaleRgb(id.lip, 0.85), bx!, by!, scaleRgb(id.lip, 1.1)));
  const gap = h * 0.5 + raise;
  if (gap > 0.006) {
    const inner = ui.slice();
    for (let i = n; i >= 0; i--) inner.push(li[2 * i]!, li[2 * i + 1]!);
    const innerPx = f.map(inner, 1);
    canvas.fillPolygon(innerPx, solid([0.22, 0.06, 0.07]));
    const tooth = Math.min(0.06, gap * 0.6);
    if (e.teeth > 0.1) {
      const band = ui.slice();
      for (let i = n; i >= 0; i--) band.push(ui[2 * i]!, ui[2 * i + 1]! + tooth * Math.sqrt(prof((2 * i) / n - 1)));
      canvas.fillPolygon(f.map(band, 1), solid([0.96, 0.94, 0.88]), Math.min(1, e.teeth));
    }
    if (e.lowerTeeth > 0.1) {
      const band = li.slice();
      for (let i = n; i >= 0; i--) band.push(li[2 * i]!, li[2 * i + 1]! - tooth * 0.7 * prof((2 * i) / n - 1));
      canvas.fillPolygon(f.map(band, 1), solid([0.9, 0.88, 0.82]), Math.min(1, e.lowerTeeth));
    }
  }
  // the lip line and the corners (a dimple on a raised corner)
  const lipLine = ui.map((v, i) => (i % 2 ? v + 0.004 : v));
  canvas.stroke(f.map(lipLine, 1), f.px(0.011), solid(scaleRgb(id.lip, 0.45)), 0.9);
  for (const [sg, c] of [
    [-1, e.cornerL],
    [1, e.cornerR],
  ] as const) {
    const t = sg;
    const x = t * mw * pull(t),
      y = mid(t);
    const pts = c > 0.2 ? [x - sg * 0.01, y + 0.01, x + sg * 0.035, y - 0.03 * c] : [x, y, x + sg * 0.015, y + 0.004];
    canvas.stroke(f.map(pts, 1), f.px(0.011), solid(scaleRgb(id.skin, 0.5)), c > 0.2 ? Math.min(0.9, c) : 0.5);
  }
}

/** Something in front of the face: a hand, a card, sunglasses, a microphone or a hair strand. */
export function drawOccluder(canvas: Canvas, f: FaceFrame, id: Identity, rng: Rng): void {
  const kind = rng.int(5);
  const color: RGB = [rng.next(), rng.next(), rng.next()];
  if (kind === 0) {
    // hand: palm plus fingers over the mouth or a cheek
    const sg = rng.sign();
    const x = rng.uniform(-0.4, 0.4),
      y = rng.uniform(0.2, 0.8);
    const handSkin = scaleRgb(id.skin, rng.uniform(0.9, 1.05));
    canvas.fillPolygon(f.map(ellipsePoints(x, y + 0.15, 0.26, 0.22, sg * 0.3, 24), 1), solid(handSkin));
    for (let k = 0; k < 4; k++) {
      const fx = x - 0.18 + 0.12 * k;
      canvas.stroke(f.map([fx, y + 0.05, fx + sg * 0.05, y - 0.22 - 0.04 * (k % 2)], 1), f.px(0.05), solid(handSkin));
      canvas.stroke(f.map([fx + 0.05, y - 0.05, fx + 0.055, y + 0.05], 1), f.px(0.006), solid(scaleRgb(handSkin, 0.7)), 0.6);
    }
  } else if (kind === 1) {
    // rectangular card / mask patch somewhere on the face
    const cx = rng.uniform(-0.5, 0.5),
      cy = rng.uniform(-0.5, 0.8);
    const w = rng.uniform(0.2, 0.45),
      h = rng.uniform(0.15, 0.4),
      a = rng.uniform(-0.6, 0.6);
    const c = Math.cos(a),
      s = Math.sin(a);
    const pts: number[] = [];
    for (const [u, v] of [
      [-w, -h],
      [w, -h],
      [w, h],
      [-w, h],
    ] as const)
      pts.push(cx + c * u - s * v, cy + s * u + c * v);
    const px = f.map(pts, 1);
    canvas.fillPolygon(px, linear(px[0]!, px[1]!, color, px[4]!, px[5]!, scaleRgb(color, 0.6)));
  } else if (kind === 2) {
    // sunglasses
    const tint: RGB = [0.05 + 0.15 * rng.next(), 0.05 + 0.1 * rng.next(), 0.08 + 0.1 * rng.next()];
    for (const sg of [-1, 1]) {
      canvas.fillPolygon(f.map(ellipsePoints(sg * id.eyeSep, id.eyeY, id.eyeW * 1.45, id.eyeH * 2.6, 0, 24), 1), solid(tint), 0.95);
    }
    canvas.stroke(f.map([-id.eyeSep + id.eyeW * 1.4, id.eyeY - 0.03, id.eyeSep - id.eyeW * 1.4, id.eyeY - 0.03], 1), f.px(0.015), solid(tint));
    canvas.stroke(f.map([-id.eyeSep - id.eyeW * 1.4, id.eyeY - 0.03, -id.faceW, id.eyeY - 0.02], 1), f.px(0.012), solid(tint));
    canvas.stroke(f.map([id.eyeSep + id.eyeW * 1.4, id.eyeY - 0.03, id.faceW, id.eyeY - 0.02], 1), f.px(0.012), solid(tint));
  } else if (kind === 3) {
    // microphone / cup from below
    const x = rng.uniform(-0.5, 0.5);
    canvas.stroke(f.map([x, 0.75, x + rng.uniform(-0.3, 0.3), 1.6], 1), f.px(0.07), solid(scaleRgb(color, 0.5)));
    const [hx, hy] = f.map([x - 0.05, 0.63], 1);
    canvas.fillPolygon(f.map(ellipsePoints(x, 0.7, 0.17, 0.19, 0, 20), 1), radial(hx!, hy!, f.px(0.2), [0.8, 0.8, 0.8], [0.25, 0.25, 0.25]));
  } else {
    // a strand of hair across the face
    const y0 = rng.uniform(-0.6, 0.1);
    const sg = rng.sign();
    const midX = rng.uniform(-0.2, 0.2);
    const endX = -sg * rng.uniform(0.1, 0.5),
      endY = y0 + rng.uniform(0.3, 0.8);
    const strand = bezier(sg * id.faceW, y0 - 0.2, midX, y0 + 0.3, endX, endY, 10);
    canvas.stroke(f.map(strand, 1), f.px(rng.uniform(0.03, 0.07)), solid(id.hair));
  }
}

export const NEUTRAL_EXPRESSION: Readonly<ExpressionParams> = ZERO;
