/** Whole datasets and pools from the face and scene drawers, deterministic from a seed. */
import type { FerData, ImagePool, Split } from '../../../src/contracts/dataset.ts';
import { classNames, EXPRESSIONS_8 } from '../../../src/data/expressions.ts';
import { drawFace, drawOccluder, sampleExpression, sampleIdentity, samplePose, type Box, type Identity } from './face.ts';
import { Canvas } from './raster.ts';
import { Rng } from '../../../src/core/rng.ts';
import { drawBackground, drawGeneric, finishImage, GENERIC_CATEGORIES } from './scene.ts';

/** Knobs that make the set harder or easier. */
export interface Difficulty {
  /** Expression intensity is uniform in [intensityMin, intensityMax] (0 = neutral face). */
  readonly intensityMin: number;
  readonly intensityMax: number;
  /** Spread of position, scale, rotation and head turn (0 = centred frontal faces). */
  readonly pose: number;
  /** Standard deviation of the pixel noise (varies ±50 % per image). */
  readonly noise: number;
  /** Probability that something covers part of the face. */
  readonly occlusion: number;
  /** Amount of background clutter (0 = plain gradient). */
  readonly clutter: number;
  /** Spread of exposure, colour cast and gamma. */
  readonly lighting: number;
}

export const DEFAULT_DIFFICULTY: Readonly<Difficulty> = {
  intensityMin: 0.3,
  intensityMax: 1,
  pose: 0.7,
  noise: 0.02,
  occlusion: 0.1,
  clutter: 0.7,
  lighting: 0.8,
};

export interface FerSetOptions {
  readonly classes: 7 | 8;
  readonly trainSize: number;
  readonly testSize: number;
  readonly imageSize: number;
  readonly seed: number;
  readonly difficulty?: Partial<Difficulty>;
  /** Average images per identity (default 6); test identities never appear in train. */
  readonly imagesPerIdentity?: number;
  readonly name?: string;
  readonly displayName?: string;
  readonly standIn?: string;
}

export interface FaceImage {
  readonly box: Box;
}

/**
 * Draws one labelled face into `out` (length size·size·3); everything random comes from `rng`
 * except the identity, which the caller fixes.
 */
export function renderFace(out: Float32Array, size: number, identity: Identity, classIndex: number, rng: Rng, difficulty: Difficulty): FaceImage {
  const canvas = new Canvas(size, size, out);
  drawBackground(canvas, rng, difficulty.clutter);
  const pose = samplePose(rng, size, difficulty.pose);
  const intensity = rng.uniform(difficulty.intensityMin, difficulty.intensityMax);
  const expression = sampleExpression(EXPRESSIONS_8[classIndex]!, intensity, rng, identity);
  const drawn = drawFace(canvas, identity, expression, pose, rng);
  if (rng.chance(difficulty.occlusion)) drawOccluder(canvas, drawn.frame, identity, rng);
  finishImage(out, rng, difficulty.noise, difficulty.lighting);
  return { box: drawn.box };
}

function resolveDifficulty(d?: Partial<Difficulty>): Difficulty {
  const r = { ...DEFAULT_DIFFICULTY, ...(d ?? {}) };
  if (!(r.intensityMin <= r.intensityMax)) throw new Error(`intensity range [${r.intensityMin}, ${r.intensityMax}] is empty`);
  return r;
}

/** `size` labels with every class within one of size/classes, in shuffled order. */
export function stratifiedLabels(size: number, classes: number, rng: Rng): Int32Array {
  const labels = new Int32Array(size);
  const offset = rng.int(classes);
  for (let i = 0; i < size; i++) labels[i] = (i + offset) % classes;
  return rng.shuffle(labels);
}

function identityCache(seed: number): (id: number) => Identity {
  const cache = new Map<number, Identity>();
  return (id) => {
    let v = cache.get(id);
    if (!v) {
      v = sampleIdentity(Rng.derive(seed, 'identity', id));
      cache.set(id, v);
    }
    return v;
  };
}

interface SplitPlan {
  readonly tag: string;
  readonly size: number;
  readonly firstIdentity: number;
  readonly identities: number;
}

function generateSplit(
  plan: SplitPlan,
  opts: { seed: number; imageSize: number; classes: number; difficulty: Difficulty; identity: (id: number) => Identity },
): Split {
  const { size, tag } = plan;
  const px = opts.imageSize * opts.imageSize * 3;
  const images = new Float32Array(size * px);
  const boxes = new Float32Array(size * 4);
  const labels = stratifiedLabels(size, opts.classes, Rng.derive(opts.seed, tag, 'labels'));
  const identities = new Int32Array(size);
  for (let i = 0; i < size; i++) identities[i] = plan.firstIdentity + (i % plan.identities);
  Rng.derive(opts.seed, tag, 'identities').shuffle(identities);
  for (let i = 0; i < size; i++) {
    const rng = Rng.derive(opts.seed, tag, 'image', i);
    const { box } = renderFace(images.subarray(i * px, (i + 1) * px), opts.imageSize, opts.identity(identities[i]!), labels[i]!, rng, opts.difficulty);
    boxes.set(box, i * 4);
  }
  // The drawn face's box is ground truth: an annotated box for every image.
  return { size, images, labels, boxes, annotatedBoxes: new Uint8Array(size).fill(1), identities };
}

function checkSize(name: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/**
 * A few people, each drawn in every expression: one row per identity, one column per class in
 * class order, the row's background, pose and intensity the same in every
 * column (the noise after the face may differ), so that only the expression changes along a row. It shows whether the expression cues
 * survive at an image size.
 */
export function drawExpressionSheet(o: { classes: 7 | 8; imageSize: number; seed: number; difficulty?: Partial<Difficulty>; identities: number }): {
  images: Float32Array;
  captions: string[];
  count: number;
} {
  checkSize('imageSize', o.imageSize, 8);
  const difficulty = resolveDifficulty(o.difficulty);
  const px = o.imageSize * o.imageSize * 3;
  const count = o.identities * o.classes;
  const images = new Float32Array(count * px);
  const names = classNames(o.classes);
  const captions: string[] = [];
  for (let r = 0; r < o.identities; r++) {
    const identity = sampleIdentity(Rng.derive(o.seed, 'sheet-identity', r));
    for (let c = 0; c < o.classes; c++) {
      // The same stream for every column of a row: only the expression's own draws differ.
      const k = r * o.classes + c;
      renderFace(images.subarray(k * px, (k + 1) * px), o.imageSize, identity, c, Rng.derive(o.seed, 'sheet', r), difficulty);
      captions.push(names[c]!);
    }
  }
  return { images, captions, count };
}

/** A labelled facial-expression set: train and test from separate streams and disjoint identities. */
export function generateFerSet(o: FerSetOptions): FerData {
  if (o.classes !== 7 && o.classes !== 8) throw new Error(`classes must be 7 or 8, got ${o.classes}`);
  checkSize('trainSize', o.trainSize);
  checkSize('testSize', o.testSize);
  checkSize('imageSize', o.imageSize, 8);
  const difficulty = resolveDifficulty(o.difficulty);
  const perId = Math.max(1, o.imagesPerIdentity ?? 6);
  const trainIds = Math.max(1, Math.ceil(o.trainSize / perId));
  const testIds = Math.max(1, Math.ceil(o.testSize / perId));
  const common = { seed: o.seed >>> 0, imageSize: o.imageSize, classes: o.classes, difficulty, identity: identityCache(o.seed >>> 0) };
  const train = generateSplit({ tag: 'train', size: o.trainSize, firstIdentity: 0, identities: trainIds }, common);
  const test = generateSplit({ tag: 'test', size: o.testSize, firstIdentity: trainIds, identities: testIds }, common);
  return {
    name: o.name ?? 'synthetic-faces',
    displayName: o.displayName ?? 'Synthetic faces',
    classes: [...classNames(o.classes)],
    imageSize: o.imageSize,
    train,
    test,
    ...(o.standIn ? { standIn: o.standIn } : {}),
  };
}

export interface PoolOptions {
  readonly size: number;
  readonly imageSize: number;
  readonly seed: number;
  readonly difficulty?: Partial<Difficulty>;
  /** Face pool: average images per identity (default 8). */
  readonly imagesPerIdentity?: number;
  readonly standIn?: string;
}

/**
 * A face-recognition style pool: many identities, each with random expressions (all eight,
 * neutral most often). Labels are identity ids, so supervised pre-training can use them.
 */
export function generateFacePool(o: PoolOptions): ImagePool & { readonly boxes: Float32Array } {
  checkSize('size', o.size);
  checkSize('imageSize', o.imageSize, 8);
  const seed = o.seed >>> 0;
  const difficulty = resolveDifficulty({ intensityMin: 0, ...o.difficulty });
  const perId = Math.max(1, o.imagesPerIdentity ?? 8);
  const ids = Math.max(1, Math.ceil(o.size / perId));
  const identity = identityCache(seed);
  const px = o.imageSize * o.imageSize * 3;
  const images = new Float32Array(o.size * px);
  const boxes = new Float32Array(o.size * 4);
  const labels = stratifiedLabels(o.size, ids, Rng.derive(seed, 'pool', 'identities'));
  for (let i = 0; i < o.size; i++) {
    const rng = Rng.derive(seed, 'pool', 'image', i);
    const cls = rng.weighted([4, 1, 1, 1, 1, 1, 1, 1]);
    const { box } = renderFace(images.subarray(i * px, (i + 1) * px), o.imageSize, identity(labels[i]!), cls, rng, difficulty);
    boxes.set(box, i * 4);
  }
  return {
    kind: 'faces',
    imageSize: o.imageSize,
    size: o.size,
    images,
    labels,
    numClasses: ids,
    boxes,
    ...(o.standIn ? { standIn: o.standIn } : {}),
  };
}

/** Non-face pictures (shapes, stripes, checkers, dots, waves); labels are the shape family. */
export function generateGenericPool(o: PoolOptions): ImagePool {
  checkSize('size', o.size);
  checkSize('imageSize', o.imageSize, 8);
  const seed = o.seed >>> 0;
  const difficulty = resolveDifficulty(o.difficulty);
  const px = o.imageSize * o.imageSize * 3;
  const images = new Float32Array(o.size * px);
  const labels = stratifiedLabels(o.size, GENERIC_CATEGORIES.length, Rng.derive(seed, 'generic', 'labels'));
  for (let i = 0; i < o.size; i++) {
    const rng = Rng.derive(seed, 'generic', 'image', i);
    const out = images.subarray(i * px, (i + 1) * px);
    drawGeneric(new Canvas(o.imageSize, o.imageSize, out), rng, labels[i]!, difficulty.clutter);
    finishImage(out, rng, difficulty.noise, difficulty.lighting);
  }
  return {
    kind: 'generic',
    imageSize: o.imageSize,
    size: o.size,
    images,
    labels,
    numClasses: GENERIC_CATEGORIES.length,
    ...(o.standIn ? { standIn: o.standIn } : {}),
  };
}
