// Builds small datasets in their official layouts in temporary folders, and loads them through
// the dataset plugins the way a recipe does.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { DatasetSource, FerData, LoadRequest, Split } from '../../../src/contracts/dataset.ts';
import { PluginRegistry } from '../../../src/core/registry.ts';
import { projectRoot } from '../../helpers.ts';

/** A dataset plugin created from its file with the schema's defaults filled in. */
export async function datasetPlugin(name: string, options: Record<string, unknown>, recipeDir = '.', seed = 7): Promise<DatasetSource> {
  const registry = new PluginRegistry();
  await registry.loadFile(path.join(projectRoot, 'plugins', 'dataset', `${name}.ts`), true);
  return registry.create('dataset', { use: name, ...options }, { seed, scale: 'smoke', recipeDir });
}

export async function load(name: string, options: Record<string, unknown>, req: Partial<LoadRequest> = {}): Promise<FerData> {
  const source = await datasetPlugin(name, options);
  return source.load({ imageSize: 16, trainSize: null, testSize: null, ...req });
}

/**
 * The colour a fixture image of `label` is painted with: the label is read back from the red
 * channel of the decoded pixels, so image and label can be checked to travel together.
 */
export function colourOf(label: number, index: number): [number, number, number] {
  return [20 + 25 * label, (37 * index) % 256, 128];
}

/** The label painted into image i of a split (see colourOf). */
export function paintedLabel(split: Split, i: number, size: number): number {
  return Math.round((split.images[i * size * size * 3]! * 255 - 20) / 25);
}

/** Writes a solid image of the given colour; PNG keeps colours exact, JPEG nearly so. */
export async function writeSolid(file: string, width: number, height: number, rgb: readonly number[], channels: 1 | 3 = 3): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = rgb[c]!;
  const img = sharp(data, { raw: { width, height, channels } });
  await (file.endsWith('.png') ? img.png() : file.endsWith('.webp') ? img.webp({ lossless: true }) : img.jpeg({ quality: 95 })).toFile(file);
}

export function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

export function counts(labels: Int32Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}
