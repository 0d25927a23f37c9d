/**
 * Writes a FerData to disk in RAF-DB basic's layout (`ssfer synth`), so the loader code that reads
 * the real dataset can be exercised on any other, synthetic data first:
 *
 *   Image/aligned/train_00001_aligned.png
 *   EmoLabel/list_patition_label.txt          "train_00001.png 4" (RAF-DB numbering, 1-7)
 *   Annotation/boundingbox/train_00001_boundingbox.txt   "x1 y1 x2 y2"
 *   classes.txt                               "4 happiness" per class, in RAF-DB order
 *
 * (`list_patition_label.txt` keeps RAF-DB's own spelling.) Test images are `test_0001…`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FerData, Split } from '../contracts/dataset.ts';
import { EXPRESSIONS_8, RAFDB_LABEL, type Expression } from './expressions.ts';

export type ImageFormat = 'png' | 'jpg';

/** RAF-DB's name stem of image `index` (0-based) of a split. */
export function rafdbStem(split: 'train' | 'test', index: number): string {
  return `${split}_${String(index + 1).padStart(split === 'train' ? 5 : 4, '0')}`;
}

/** Float pixels in [0, 1] → bytes, rounding to nearest. */
export function toBytes(pixels: Float32Array): Buffer {
  const out = Buffer.alloc(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i]!;
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return out;
}

/** Writes the set; resolves to every file written (absolute or relative as `outDir` is). */
export async function writeDatasetLayout(data: FerData, outDir: string, format: ImageFormat = 'png'): Promise<string[]> {
  const labelOf = (classIndex: number): number => {
    const name = data.classes[classIndex] as Expression | undefined;
    const raf = name !== undefined ? RAFDB_LABEL[name] : undefined;
    if (raf === undefined) throw new Error(`class ${classIndex} (${String(name)}) has no RAF-DB label`);
    return raf;
  };
  const imageDir = join(outDir, 'Image', 'aligned');
  const boxDir = join(outDir, 'Annotation', 'boundingbox');
  const labelDir = join(outDir, 'EmoLabel');
  await Promise.all([imageDir, boxDir, labelDir].map((d) => mkdir(d, { recursive: true })));

  const written: string[] = [];
  const labelLines: string[] = [];
  const size = data.imageSize;
  const px = size * size * 3;
  const jobs: (() => Promise<void>)[] = [];
  for (const [split, s] of [
    ['train', data.train],
    ['test', data.test],
  ] as ['train' | 'test', Split][]) {
    for (let i = 0; i < s.size; i++) {
      const stem = rafdbStem(split, i);
      labelLines.push(`${stem}.${format} ${labelOf(s.labels[i]!)}`);
      const imagePath = join(imageDir, `${stem}_aligned.${format}`);
      const boxPath = join(boxDir, `${stem}_boundingbox.txt`);
      const b = s.boxes.subarray(i * 4, i * 4 + 4);
      const pixels = s.images.subarray(i * px, (i + 1) * px);
      written.push(imagePath, boxPath);
      jobs.push(async () => {
        const img = sharp(toBytes(pixels), { raw: { width: size, height: size, channels: 3 } });
        await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(imagePath);
        await writeFile(boxPath, `${fmt(b[0]!)} ${fmt(b[1]!)} ${fmt(b[2]!)} ${fmt(b[3]!)}\n`);
      });
    }
  }
  // a bounded number of files in flight keeps descriptors and memory in check
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(16, jobs.length) }, worker));

  const labelPath = join(labelDir, 'list_patition_label.txt');
  await writeFile(labelPath, labelLines.join('\n') + '\n');
  const classesPath = join(outDir, 'classes.txt');
  const present = EXPRESSIONS_8.filter((name) => data.classes.includes(name)).sort((a, b) => RAFDB_LABEL[a] - RAFDB_LABEL[b]);
  await writeFile(classesPath, present.map((name) => `${RAFDB_LABEL[name]} ${name}`).join('\n') + '\n');
  written.push(labelPath, classesPath);
  return written;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
