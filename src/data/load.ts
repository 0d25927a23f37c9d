import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FerData, LoadRequest, Split } from '../contracts/dataset.ts';
import { Rng } from '../core/rng.ts';
import { cacheKey, readEntry, writeEntry, type StoredArray } from './cache.ts';
import { decodeAll, unreadableWhy, type Box, type ImageSource } from './decode.ts';
import { DatasetError, IssueLog, type IssueCounts, type Place } from './errors.ts';
import { stratifiedSubset } from './subset.ts';

/** Bump when decoding or the stored layout changes, so older cache entries are not reused. */
export const LOADER_VERSION = 2;

/** One labelled image as a dataset's index lists it. */
export interface IndexEntry {
  readonly source: ImageSource;
  readonly label: number;
  /** Face box in the source image's pixels; null: the whole image is the face. */
  readonly box: Box | null;
  /** Official fold, where the dataset defines folds. */
  readonly fold?: number;
  /** Where the entry is listed, for messages. */
  readonly place: Place;
}

/** What a dataset reader makes of the files on disk, before any image is decoded. */
export interface DatasetIndex {
  readonly classes: readonly string[];
  readonly train: readonly IndexEntry[];
  readonly test: readonly IndexEntry[];
  /** Digests of the index files read; their content is part of the cache key. */
  readonly digests: readonly string[];
  /** Rows the dataset's own rules left out, one sentence each. */
  readonly notes: readonly string[];
  /** Every image is in the training split with its fold, and the test split is empty by design (Adience). */
  readonly foldsOnly?: boolean;
}

export interface LoadContext {
  readonly name: string;
  readonly displayName: string;
  /** Seeds the stratified subsets. */
  readonly seed: number;
  /** Holds the problems the reader met; decoding adds to it. */
  readonly issues: IssueLog;
  readonly onProgress?: (done: number, total: number) => void;
  /** The dataset's folder and the files it reads, for the message when a split loads (almost) nothing. */
  readonly dataset?: { readonly root: string; readonly layout: string };
}

type SplitName = 'train' | 'test';
const SPLITS: readonly SplitName[] = ['train', 'test'];

/**
 * Turns an index into a FerData at the requested size: a stratified seeded subset where the
 * request asks for fewer images, image files checked, then the images decoded — or read back
 * from the decoded-image cache when the same inputs were decoded before.
 */
export async function loadIndexed(index: DatasetIndex, req: LoadRequest, ctx: LoadContext): Promise<FerData> {
  checkIndex(index, ctx);
  const wanted = { train: req.trainSize, test: req.testSize };
  const chosen = {} as Record<SplitName, IndexEntry[]>;
  const keyParts = {} as Record<SplitName, string>;
  const picked = {} as Record<SplitName, number>;
  for (const split of SPLITS) {
    const all = index[split];
    const labels = Int32Array.from(all, (e) => e.label);
    const subset = stratifiedSubset(labels, index.classes.length, wanted[split], Rng.derive(ctx.seed, 'subset', ctx.name, split));
    picked[split] = subset.length;
    const hash = createHash('sha256');
    chosen[split] = [];
    for (const i of subset) {
      const e = all[i]!;
      const id = describe(e, ctx.issues);
      if (id === null) continue;
      chosen[split].push(e);
      hash.update(`${id}|${e.label}|${e.box?.join(',') ?? '-'}|${e.fold ?? '-'}\n`);
    }
    keyParts[split] = hash.digest('hex');
  }
  const key = cacheKey({
    version: LOADER_VERSION,
    name: ctx.name,
    imageSize: req.imageSize,
    policy: ctx.issues.policy,
    classes: index.classes,
    digests: index.digests,
    ...keyParts,
  });
  const file = req.cacheDir ? path.join(req.cacheDir, `${ctx.name}-${key.slice(0, 32)}.bin`) : undefined;

  let arrays: Record<string, StoredArray>;
  const hit = file ? readEntry(file, key) : undefined;
  if (hit && 'arrays' in hit) {
    arrays = hit.arrays;
    ctx.issues.absorb(hit.meta.decodeIssues as IssueCounts);
  } else {
    const decodeIssues = new IssueLog(ctx.issues.policy);
    arrays = await decodeSplits(chosen, req.imageSize, decodeIssues, ctx.onProgress);
    const counted = decodeIssues.counted();
    if (file) writeEntry(file, key, arrays, { decodeIssues: counted, dataset: ctx.name, imageSize: req.imageSize });
    ctx.issues.absorb(counted);
  }
  for (const split of SPLITS) checkLoaded(split, picked[split], (arrays[`${split}.labels`] as Int32Array).length, ctx);
  const notes = [...index.notes, ...ctx.issues.notes()];
  return {
    name: ctx.name,
    displayName: ctx.displayName,
    classes: [...index.classes],
    imageSize: req.imageSize,
    train: splitOf(arrays, 'train'),
    test: splitOf(arrays, 'test'),
    ...(ctx.dataset ? { source: ctx.dataset.root } : {}),
    ...(notes.length ? { notes } : {}),
  };
}

/**
 * What identifies an entry's pixels in the cache key: an image file's path, size and time of
 * change (so a replaced image is decoded again), or the index line holding the pixels (whose
 * file is covered by its digest). null: the image file is missing and was skipped.
 */
function describe(e: IndexEntry, issues: IssueLog): string | null {
  if (!('file' in e.source)) return `@${e.place.file}:${e.place.line ?? 0}`;
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(e.source.file, { throwIfNoEntry: false });
  } catch (err) {
    // A symbolic link loop, a folder without permission: named, and judged by on_error like the rest.
    issues.report(
      'unreadable',
      e.place,
      `image ${e.source.file} cannot be read (${unreadableWhy((err as NodeJS.ErrnoException).code, err)})`,
      'a readable image file',
    );
    return null;
  }
  if (!st?.isFile()) {
    issues.report('missing', e.place, `image ${e.source.file} not found`, 'an image file for every listed entry');
    return null;
  }
  if (st.size === 0) {
    issues.report('unreadable', e.place, `image ${e.source.file} is empty (0 bytes)`, 'a readable JPEG, PNG or WebP image');
    return null;
  }
  return `${e.source.file}|${st.size}|${st.mtimeMs}`;
}

async function decodeSplits(
  chosen: Record<SplitName, IndexEntry[]>,
  size: number,
  issues: IssueLog,
  onProgress?: (done: number, total: number) => void,
): Promise<Record<string, StoredArray>> {
  const jobs = [...chosen.train, ...chosen.test];
  const decoded = await decodeAll(jobs, size, {
    onFailure: (i, err) => issues.reportError(err, jobs[i]!.place),
    ...(onProgress ? { onProgress } : {}),
  });
  const px = size * size * 3;
  const arrays: Record<string, StoredArray> = {};
  let at = 0;
  for (const split of SPLITS) {
    const entries = chosen[split];
    const kept: number[] = [];
    entries.forEach((_, i) => {
      if (decoded.ok[at + i]) kept.push(at + i);
    });
    arrays[`${split}.pixels`] = gather(decoded.pixels, kept, px);
    arrays[`${split}.boxes`] = gather(decoded.boxes, kept, 4);
    arrays[`${split}.annotated`] = Uint8Array.from(kept, (j) => (jobs[j]!.box ? 1 : 0));
    arrays[`${split}.labels`] = Int32Array.from(kept, (j) => jobs[j]!.label);
    if (entries.some((e) => e.fold !== undefined)) arrays[`${split}.folds`] = Int32Array.from(kept, (j) => jobs[j]!.fold ?? -1);
    at += entries.length;
  }
  return arrays;
}

/** Rows `kept` (ascending) of a row-major array; a view when they are contiguous. */
function gather<T extends Uint8Array | Float32Array>(all: T, kept: readonly number[], width: number): T {
  const first = kept[0] ?? 0;
  if (kept.length === 0 || kept[kept.length - 1]! - first === kept.length - 1) return all.subarray(first * width, (first + kept.length) * width) as T;
  const out = new (all.constructor as new (n: number) => T)(kept.length * width);
  kept.forEach((j, k) => out.set(all.subarray(j * width, (j + 1) * width), k * width));
  return out;
}

function splitOf(arrays: Record<string, StoredArray>, split: SplitName): Split {
  const bytes = arrays[`${split}.pixels`] as Uint8Array;
  const labels = arrays[`${split}.labels`] as Int32Array;
  const images = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) images[i] = bytes[i]! / 255;
  const folds = arrays[`${split}.folds`] as Int32Array | undefined;
  const annotated = arrays[`${split}.annotated`] as Uint8Array;
  return {
    size: labels.length,
    images,
    labels,
    boxes: arrays[`${split}.boxes`] as Float32Array,
    ...(annotated.includes(1) ? { annotatedBoxes: annotated } : {}),
    ...(folds ? { folds } : {}),
  };
}

const SPLIT_WORD: Record<SplitName, string> = { train: 'training', test: 'test' };

/** The fix for a dataset that loads (almost) nothing: point root at the files. */
function rootFix(ctx: LoadContext): string {
  const layout = ctx.dataset ? ` (${ctx.dataset.layout})` : '';
  return `Check that root names the ${ctx.displayName} folder as distributed${layout} and that its files are complete; on_error: skip is for a few damaged entries, not for a wrong folder.`;
}

function where(ctx: LoadContext): Place {
  return { file: ctx.dataset?.root ?? ctx.name };
}

/** Stops a dataset whose index lists no images for a split, or lost most of its entries to on_error: skip. */
function checkIndex(index: DatasetIndex, ctx: LoadContext): void {
  const listed = index.train.length + index.test.length;
  const skipped = ctx.issues.skipped;
  if (skipped > 0 && skipped > (listed + skipped) / 2) {
    throw new DatasetError(
      where(ctx),
      `on_error: skip left out ${skipped} of ${listed + skipped} entries of ${ctx.displayName} (${ctx.issues.summary()})`,
      'at most a few damaged entries',
      rootFix(ctx),
    );
  }
  for (const split of SPLITS) {
    if (split === 'test' && index.foldsOnly) continue;
    if (index[split].length > 0) continue;
    const dropped = index.notes.length ? ` (${index.notes.join('; ')})` : '';
    throw new DatasetError(
      where(ctx),
      `${ctx.displayName} lists no ${SPLIT_WORD[split]} images${dropped}`,
      `its index files to list the ${SPLIT_WORD[split]} split`,
      rootFix(ctx),
    );
  }
}

/** Stops a split that ended up empty, or lost more than half its images to on_error: skip. */
function checkLoaded(split: SplitName, picked: number, kept: number, ctx: LoadContext): void {
  const lost = picked - kept;
  if (lost === 0 || lost * 2 <= picked) return;
  throw new DatasetError(
    where(ctx),
    `${kept === 0 ? `none of the ${picked}` : `only ${kept} of ${picked}`} ${SPLIT_WORD[split]} images of ${ctx.displayName} could be loaded; on_error: skip left out ${ctx.issues.summary()}`,
    'at most a few missing or unreadable images',
    rootFix(ctx),
  );
}
