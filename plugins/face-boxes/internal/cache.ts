import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../../../src/core/files.ts';
import type { Box } from './detections.ts';

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Digest of one image's pixels in an NHWC batch. */
export function imageDigest(images: Float32Array, index: number, imageSize: number): string {
  const n = imageSize * imageSize * 3;
  return sha256(new Uint8Array(images.buffer, images.byteOffset + index * n * 4, n * 4));
}

// The cells of a table share one decoded training split: its digests are computed once.
const digestsOf = new WeakMap<Float32Array, { imageSize: number; digests: string[] }>();

/** Digests of the first `count` images of an NHWC batch (the array must not change afterwards). */
export function imageDigests(images: Float32Array, count: number, imageSize: number): string[] {
  const known = digestsOf.get(images);
  if (known && known.imageSize === imageSize && known.digests.length >= count) return known.digests.slice(0, count);
  const digests = Array.from({ length: count }, (_, i) => imageDigest(images, i, imageSize));
  digestsOf.set(images, { imageSize, digests });
  return digests;
}

const fileDigests = new Map<string, { stamp: string; digest: string }>();

/** Digest of a file's bytes, read again only when its size or modification time changes. */
export function fileDigest(file: string): string {
  const st = fs.statSync(file);
  const stamp = `${st.size}:${st.mtimeMs}`;
  const known = fileDigests.get(file);
  if (known?.stamp === stamp) return known.digest;
  const digest = sha256(fs.readFileSync(file));
  fileDigests.set(file, { stamp, digest });
  return digest;
}

const FORMAT = 'ssfer-face-boxes';

/** A cached detection: the face's box, or null when the detector found none it accepts. */
export type Found = Box | null;

const memory = new Map<string, Map<string, Found>>();

/**
 * Detections by image digest for one detector setting (`key`: model digest and options), held in
 * memory for the process and, when `dir` is given, in `<dir>/<key>.json` across runs. The file is
 * merged with what is on disk and replaced atomically, so concurrent runs only lose work, never
 * leave a damaged file.
 */
export class BoxCache {
  private readonly boxes: Map<string, Found>;
  private readonly file: string | null;
  private added = 0;

  constructor(key: string, dir: string | null) {
    this.file = dir ? path.join(dir, `${key}.json`) : null;
    // Each cache file has its own copy in memory, read once per process.
    const at = this.file ?? key;
    let boxes = memory.get(at);
    if (!boxes) {
      boxes = new Map(this.file ? readFile(this.file) : []);
      memory.set(at, boxes);
    }
    this.boxes = boxes;
  }

  /** The stored detection; undefined when this image was not seen with this setting. */
  get(image: string): Found | undefined {
    return this.boxes.get(image);
  }

  set(image: string, box: Found): void {
    this.boxes.set(image, box);
    this.added++;
  }

  save(): void {
    if (!this.file || this.added === 0) return;
    for (const [k, v] of readFile(this.file)) if (!this.boxes.has(k)) this.boxes.set(k, v);
    writeAtomic(this.file, JSON.stringify({ format: FORMAT, boxes: Object.fromEntries(this.boxes) }));
    this.added = 0;
  }
}

function readFile(file: string): [string, Found][] {
  if (!fs.existsSync(file)) return [];
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: string; boxes?: Record<string, unknown> };
    if (parsed.format !== FORMAT || !parsed.boxes) return [];
    const valid = (b: unknown): b is Found => b === null || (Array.isArray(b) && b.length === 4 && b.every(Number.isFinite));
    return Object.entries(parsed.boxes).filter((e): e is [string, Found] => valid(e[1]));
  } catch {
    // An unreadable entry is recomputed and then replaced.
    return [];
  }
}
