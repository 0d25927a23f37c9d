import path from 'node:path';
import { nullable, Type } from '../../../src/core/schema.ts';
import type { Split } from '../../../src/contracts/dataset.ts';
import type { BoxRequest, FaceBoxes } from '../../../src/contracts/training.ts';
import { BoxCache, imageDigests, sha256, type Found } from './cache.ts';
import { toImage, type Box } from './detections.ts';

/** The authors' box for an image without a usable detection: [25, 25, 220, 220] at 224 px. */
export const AUTHORS_FALLBACK: Box = [25, 25, 220, 220];
/** The size the fallback box is written at (the authors' detector input). */
export const FALLBACK_SIZE = 224;

/** The `fallback` option every detector plugin offers. */
export const FALLBACK_OPTION = (
  description = "box used for an image without a usable detection, at 224 px and scaled to the image (the authors' central box)",
) =>
  Type.Unsafe<[number, number, number, number]>({
    type: 'array',
    items: { type: 'number' },
    minItems: 4,
    maxItems: 4,
    default: [...AUTHORS_FALLBACK],
    description,
  });

/** The `cache` option every detector plugin offers. */
export const CACHE_OPTION = nullable(Type.String(), {
  default: null,
  description: "folder keeping the detections across runs, relative to the recipe; null: the run's cache folder (<results>/.cache/data/face-boxes)",
});

/** An open detector: finds the face box of one image of an NHWC [0, 1] batch. */
export interface DetectorSession {
  /** The face's box in image pixels, or null when the detector found none its rules accept. */
  detect(images: Float32Array, index: number): Promise<Found>;
  close(): Promise<void>;
}

/** A face detector as the detector plugins describe it to the shared loop below. */
export interface Detector {
  /** What the notes call it, for example `face-api ssd-mobilenet`. */
  readonly label: string;
  /** Everything the detections depend on besides the pixels (model digest, options): the cache key. */
  readonly settings: Record<string, unknown>;
  /** The plugin's cache folder; null: the run's (BoxRequest.cacheDir), or memory only. */
  readonly cacheDir: string | null;
  /** The fallback box at 224 px. */
  readonly fallback: Box;
  /** Which images fall back, for the notes: `without a detected face`. */
  readonly missing: string;
  /** Loads the model for detections at `imageSize` (called only when some image is not cached). */
  open(imageSize: number): Promise<DetectorSession>;
}

/** Progress lines at most this often during a long detection. */
const PROGRESS_MS = 30_000;

/**
 * Runs a detector over a split (or the images `request.only` names): each image's detection is
 * looked up by its content in the cache first, and the detector opened only for the others. An
 * image without a usable detection gets the fallback box, and the note counts them.
 */
export async function detectBoxes(detector: Detector, split: Split, request: BoxRequest): Promise<FaceBoxes> {
  const { imageSize } = request;
  const which = request.only ?? Int32Array.from({ length: split.size }, (_, i) => i);
  const dir = detector.cacheDir ?? (request.cacheDir ? path.join(request.cacheDir, 'face-boxes') : null);
  const cache = new BoxCache(sha256(JSON.stringify({ ...detector.settings, imageSize })).slice(0, 32), dir);
  const keys = imageDigests(split.images, split.size, imageSize);
  const found = new Map<number, Found>();
  const todo: number[] = [];
  for (const i of which) {
    const hit = cache.get(keys[i]!);
    if (hit === undefined) todo.push(i);
    else found.set(i, hit);
  }
  if (todo.length > 0) {
    request.note?.(`ssfer: face boxes: detecting faces in ${todo.length} images with ${detector.label} (kept by image content for later runs)`);
    const session = await detector.open(imageSize);
    const started = Date.now();
    let reported = started;
    try {
      for (const [n, i] of todo.entries()) {
        const box = await session.detect(split.images, i);
        found.set(i, box);
        cache.set(keys[i]!, box);
        if (request.note && Date.now() - reported > PROGRESS_MS) {
          reported = Date.now();
          const left = Math.round((((reported - started) / (n + 1)) * (todo.length - n - 1)) / 60_000);
          request.note(`ssfer: face boxes: ${n + 1} of ${todo.length} images, ${left < 1 ? 'under a minute' : `about ${left} min`} left`);
        }
      }
    } finally {
      cache.save();
      await session.close();
    }
  }
  const fallback = toImage(detector.fallback, FALLBACK_SIZE, imageSize);
  const boxes = Float32Array.from(split.boxes);
  let fallbacks = 0;
  for (const i of which) {
    const box = found.get(i)!;
    if (box === null) fallbacks++;
    boxes.set(box ?? fallback, 4 * i);
  }
  const central = detector.fallback.every((v, k) => v === AUTHORS_FALLBACK[k]);
  const fallbackBox = central ? 'the central fallback box' : `the fallback box [${detector.fallback.join(', ')}] at 224 px`;
  return { boxes, note: `face boxes: ${detector.label}, ${fallbacks} of ${which.length} images ${detector.missing} used ${fallbackBox}` };
}
