import fs from 'node:fs/promises';
import os from 'node:os';
import sharp from 'sharp';
import { EntryProblem } from './errors.ts';

/** Face box corners x1, y1, x2, y2 in pixels. */
export type Box = readonly [number, number, number, number];

/**
 * Where an image's pixels come from: an image file, or 8-bit pixels held in an index file
 * (FER2013's CSV) that are parsed only when the image is decoded.
 */
export type ImageSource = { readonly file: string } | { readonly width: number; readonly height: number; readonly channels: 1 | 3; pixels(): Uint8Array };

/**
 * Counts every image decoded in this process; tests read it to tell a cache hit (no decodes)
 * from a rebuild. Kept on globalThis because a module can be loaded twice in one process (a
 * test's static imports and the registry's dynamic plugin import are separate graphs under tsx),
 * and there must be one count.
 */
export const decodeCounter: { count: number } = ((globalThis as Record<symbol, unknown>)[Symbol.for('ssfer.decodeCounter')] ??= { count: 0 }) as {
  count: number;
};

export interface Decoded {
  /** Size of the source image, which its box refers to. */
  readonly width: number;
  readonly height: number;
}

async function inputOf(source: ImageSource): Promise<ReturnType<typeof sharp>> {
  if ('file' in source) {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(source.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new EntryProblem('missing', `image ${source.file} not found`, 'an image file for every listed entry');
      throw new EntryProblem('unreadable', `image ${source.file} cannot be read (${unreadableWhy(code, err)})`, 'a readable image file');
    }
    if (bytes.length === 0) throw new EntryProblem('unreadable', `image ${source.file} is empty (0 bytes)`, 'a readable JPEG, PNG or WebP image');
    return sharp(bytes);
  }
  const { width, height, channels } = source;
  return sharp(source.pixels(), { raw: { width, height, channels } });
}

/**
 * Decodes one image and squeezes the whole of it to size × size RGB bytes in `out` (EXIF
 * orientation is not applied, so boxes keep referring to the stored pixel grid).
 */
export async function decodeSquare(source: ImageSource, size: number, out: Uint8Array): Promise<Decoded> {
  try {
    const input = await inputOf(source);
    const meta = await input.metadata();
    if (!meta.width || !meta.height) throw new Error('no image size in the header');
    const { data, info } = await input.removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== out.length) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);
    out.set(data);
    decodeCounter.count++;
    return { width: meta.width, height: meta.height };
  } catch (err) {
    if (err instanceof EntryProblem) throw err;
    const what = 'file' in source ? `image ${source.file}` : 'pixels';
    throw new EntryProblem('unreadable', `${what} cannot be decoded (${(err as Error).message.split('\n')[0]})`, 'a readable JPEG, PNG or WebP image');
  }
}

/** Why a file cannot be read, in words where the system's code alone says little. */
export function unreadableWhy(code: string | undefined, err: unknown): string {
  if (code === 'ELOOP') return 'ELOOP: a symbolic link that leads back to itself';
  if (code === 'EACCES') return 'EACCES: no permission to read it';
  if (code === 'EISDIR') return 'EISDIR: a folder, not a file';
  return code ?? (err as Error).message;
}

/** A box in source pixels scaled into the size × size image, clamped to it; none: the whole image. */
export function scaleBox(box: Box | null, from: Decoded, size: number): Box {
  if (!box) return [0, 0, size, size];
  const sx = size / from.width;
  const sy = size / from.height;
  const clamp = (v: number) => Math.min(size, Math.max(0, v));
  return [clamp(box[0] * sx), clamp(box[1] * sy), clamp(box[2] * sx), clamp(box[3] * sy)];
}

export interface DecodeJob {
  readonly source: ImageSource;
  readonly box: Box | null;
}

export interface DecodeResult {
  /** size·size·3 bytes per job, in job order (a failed job's bytes stay zero). */
  readonly pixels: Uint8Array;
  /** Four corners per job in the stored size. */
  readonly boxes: Float32Array;
  /** Whether each job decoded. */
  readonly ok: Uint8Array;
}

export interface DecodeOptions {
  readonly concurrency?: number;
  /** Called after each image with the number done so far. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Called for a job that failed; rethrow to stop (the error ends decodeAll). */
  readonly onFailure: (index: number, err: unknown) => void;
}

/** Decodes every job with a bounded number of images in flight. */
export async function decodeAll(jobs: readonly DecodeJob[], size: number, opts: DecodeOptions): Promise<DecodeResult> {
  const px = size * size * 3;
  const pixels = new Uint8Array(jobs.length * px);
  const boxes = new Float32Array(jobs.length * 4);
  const ok = new Uint8Array(jobs.length);
  const workers = Math.max(1, Math.min(jobs.length, opts.concurrency ?? Math.min(16, 2 * os.availableParallelism())));
  let next = 0;
  let done = 0;
  let stop: unknown;
  const work = async () => {
    while (stop === undefined && next < jobs.length) {
      const i = next++;
      const job = jobs[i]!;
      try {
        const decoded = await decodeSquare(job.source, size, pixels.subarray(i * px, (i + 1) * px));
        boxes.set(scaleBox(job.box, decoded, size), i * 4);
        ok[i] = 1;
      } catch (err) {
        try {
          opts.onFailure(i, err);
        } catch (fatal) {
          stop ??= fatal;
        }
      }
      opts.onProgress?.(++done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: workers }, work));
  if (stop !== undefined) throw stop;
  return { pixels, boxes, ok };
}
