import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { imageGridPng } from '../../../src/data/picture.ts';

/** The jet colour map of a value in [0, 1] (blue → cyan → yellow → red), as OpenCV's COLORMAP_JET approximately. */
export function jet(maps: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => {
    const v = tf.expandDims(tf.clipByValue(maps, 0, 1), 3);
    const channel = (centre: number) => tf.clipByValue(tf.sub(1.5, tf.abs(tf.sub(tf.mul(v, 4), centre))), 0, 1);
    return tf.concat([channel(3), channel(2), channel(1)], 3) as tf.Tensor4D;
  });
}

/** Images [B, H, W, C] in [0, 1] with their maps [B, H, W] laid over in jet colours: (1 − α)·image + α·jet(map). */
export function overlay(images: tf.Tensor4D, maps: tf.Tensor3D, alpha = 0.5): tf.Tensor4D {
  return tf.tidy(() => {
    const rgb = images.shape[3] === 3 ? images : tf.tile(tf.slice(images, [0, 0, 0, 0], [-1, -1, -1, 1]), [1, 1, 1, 3]);
    return tf.add(tf.mul(rgb, 1 - alpha), tf.mul(jet(maps), alpha)) as tf.Tensor4D;
  });
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A grid of image rows (each [cols, H, W, C] in [0, 1], the same column count) with a title, a
 * label before each row and a heading above each column, as one PNG.
 */
export async function labelledGridPng(
  rows: readonly tf.Tensor4D[],
  rowLabels: readonly string[],
  columnLabels: readonly string[],
  title: string,
): Promise<Uint8Array> {
  const grid = await imageGridPng(rows);
  const meta = await sharp(grid).metadata();
  const gw = meta.width!;
  const gh = meta.height!;
  const left = 12 + 7 * Math.max(0, ...rowLabels.map((l) => l.length));
  const top = 52;
  const cols = rows[0]!.shape[0];
  const cellW = gw / cols;
  const cellH = gh / rows.length;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + gw + 8}" height="${top + gh + 8}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left + gw / 2}" y="20" font-size="14" text-anchor="middle">${esc(title)}</text>`,
    ...columnLabels.map((c, j) => `<text x="${left + (j + 0.5) * cellW}" y="${top - 8}" font-size="11" text-anchor="middle">${esc(c)}</text>`),
    ...rowLabels.map((r, i) => `<text x="${left - 6}" y="${top + (i + 0.5) * cellH + 4}" font-size="11" text-anchor="end">${esc(r)}</text>`),
    '</svg>',
  ].join('');
  const png = await sharp(Buffer.from(svg))
    .composite([{ input: Buffer.from(grid), left, top }])
    .png()
    .toBuffer();
  return new Uint8Array(png);
}
