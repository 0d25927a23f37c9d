import sharp from 'sharp';
import type { Photo } from '../contracts/training.ts';

/** Corners x1, y1, x2, y2 in pixels. */
export type Box = readonly [number, number, number, number];

/** A rectangle of whole pixels: left, top, width, height (it may reach past the photo's edges). */
export interface Rect {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/**
 * Where a face sits in an image of the model's training data when a bundle does not record it:
 * the authors' central box, [25, 25, 220, 220] at 224 px — what their code assumes of an aligned
 * face crop when its detector finds no face.
 */
export const AUTHORS_PLACEMENT: readonly [number, number, number, number] = [25 / 224, 25 / 224, 220 / 224, 220 / 224];

/**
 * The crop of a photo in which the face box `face` lands where the training images' faces sat:
 * `placement` is that box as shares of the training image's side (x1, y1, x2, y2). Squeezed to
 * the model's square size, the crop then shows the face as large and as placed as in training.
 */
export function faceCrop(face: Box, placement: readonly [number, number, number, number]): Rect {
  const [px1, py1, px2, py2] = placement;
  const width = (face[2] - face[0]) / (px2 - px1);
  const height = (face[3] - face[1]) / (py2 - py1);
  const left = face[0] - px1 * width;
  const top = face[1] - py1 * height;
  const l = Math.round(left) || 0; // never −0
  const t = Math.round(top) || 0;
  return { left: l, top: t, width: Math.max(1, Math.round(left + width) - l), height: Math.max(1, Math.round(top + height) - t) };
}

/**
 * The pixels of `rect` squeezed to size × size RGB values in [0, 1], as training images are
 * (sharp's Lanczos-3 resize, the whole rectangle, no centre crop). Where the rectangle reaches
 * past the photo, the photo is mirrored at its edge.
 */
export async function cropPixels(photo: Photo, rect: Rect, size: number): Promise<Float32Array> {
  const raw = { width: photo.width, height: photo.height, channels: 3 as const };
  const pad = {
    left: Math.max(0, -rect.left),
    top: Math.max(0, -rect.top),
    right: Math.max(0, rect.left + rect.width - photo.width),
    bottom: Math.max(0, rect.top + rect.height - photo.height),
  };
  let source = sharp(photo.pixels, { raw });
  let width = photo.width;
  let height = photo.height;
  if (pad.left || pad.top || pad.right || pad.bottom) {
    // Mirroring reaches at most one photo side past an edge: a margin wider than that is mirrored again.
    let pixels: Buffer = Buffer.from(photo.pixels.buffer, photo.pixels.byteOffset, photo.pixels.byteLength);
    let left = pad.left;
    let top = pad.top;
    let right = pad.right;
    let bottom = pad.bottom;
    while (left || top || right || bottom) {
      const step = { left: Math.min(left, width - 1), top: Math.min(top, height - 1), right: Math.min(right, width - 1), bottom: Math.min(bottom, height - 1) };
      pixels = await sharp(pixels, { raw: { width, height, channels: 3 } })
        .extend({ ...step, extendWith: 'mirror' })
        .raw()
        .toBuffer();
      width += step.left + step.right;
      height += step.top + step.bottom;
      left -= step.left;
      top -= step.top;
      right -= step.right;
      bottom -= step.bottom;
    }
    source = sharp(pixels, { raw: { width, height, channels: 3 } });
  }
  const bytes = await source
    .extract({ left: rect.left + pad.left, top: rect.top + pad.top, width: rect.width, height: rect.height })
    .resize(size, size, { fit: 'fill' })
    .raw()
    .toBuffer();
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < out.length; i++) out[i] = bytes[i]! / 255;
  return out;
}
