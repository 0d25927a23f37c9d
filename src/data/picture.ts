import sharp from 'sharp';
import type * as tf from '@tensorflow/tfjs';

/**
 * Rows of image tensors [B, H, W, C] in [0, 1] as one PNG grid (the paper's Fig. 3 layout:
 * one row per tensor, one column per image), enlarged with nearest-neighbour so small images
 * stay readable.
 */
export async function imageGridPng(rows: readonly tf.Tensor4D[], minTile = 96, gap = 2): Promise<Uint8Array> {
  const [cols, h, w, c] = rows[0]!.shape;
  const width = cols * w + (cols + 1) * gap;
  const height = rows.length * h + (rows.length + 1) * gap;
  const raw = Buffer.alloc(width * height * 3, 255);
  rows.forEach((t, r) => {
    const px = t.dataSync();
    for (let i = 0; i < cols; i++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const src = ((i * h + y) * w + x) * c;
          const dst = ((gap + r * (h + gap) + y) * width + gap + i * (w + gap) + x) * 3;
          for (let k = 0; k < 3; k++) {
            const v = px[src + Math.min(k, c - 1)]!;
            raw[dst + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
          }
        }
      }
    }
  });
  const scale = Math.max(1, Math.ceil(minTile / Math.max(h, w)));
  const png = await sharp(raw, { raw: { width, height, channels: 3 } })
    .resize({ width: width * scale, height: height * scale, kernel: 'nearest' })
    .png()
    .toBuffer();
  return new Uint8Array(png);
}
