// Real faces for the detector tests: the photos @vladmandic/face-api ships in its demo/ folder
// (several people each), the faces its SSD MobileNet v1 finds in them at full resolution, and
// square crops of those faces like RAF-DB's aligned images.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import type { Split } from '../../../src/contracts/dataset.ts';
import { decodeSquare } from '../../../src/data/decode.ts';

const require = createRequire(import.meta.url);
export const FACE_API_DIR = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
export const DEMO_PHOTOS = [1, 2, 3, 4, 5, 6].map((i) => path.join(FACE_API_DIR, 'demo', `sample${i}.jpg`));

interface RawDetection {
  readonly score: number;
  readonly box: { readonly x: number; readonly y: number; readonly width: number; readonly height: number };
}

interface FaceApiModule {
  readonly tf: { readonly Tensor: unknown };
  readonly nets: { readonly ssdMobilenetv1: { readonly isLoaded: boolean; loadFromDisk(dir: string): Promise<void>; dispose(): void } };
  readonly SsdMobilenetv1Options: new (o: { minConfidence: number }) => object;
  detectAllFaces(input: tf.Tensor3D, options: object): PromiseLike<RawDetection[]>;
}

/** The face-api module, the same instance the plugin loads. */
export function faceApiModule(): FaceApiModule {
  return require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApiModule;
}

/** Runs `work` on the wasm backend, as the plugin detects, and makes the previous backend active again. */
export async function onWasm<T>(work: () => Promise<T>): Promise<T> {
  await tf.ready();
  const previous = tf.getBackend();
  await tf.setBackend('wasm');
  try {
    return await work();
  } finally {
    await tf.setBackend(previous);
  }
}

/** face-api's SSD MobileNet v1 on an RGB image tensor (0–255), as the library reports it. */
export async function detectDirectly(image: tf.Tensor3D, minConfidence = 0.5): Promise<RawDetection[]> {
  const api = faceApiModule();
  const net = api.nets.ssdMobilenetv1;
  return onWasm(async () => {
    await net.loadFromDisk(path.join(FACE_API_DIR, 'model'));
    try {
      return [...(await api.detectAllFaces(image, new api.SsdMobilenetv1Options({ minConfidence })))];
    } finally {
      net.dispose();
    }
  });
}

export interface PhotoFace {
  readonly photo: string;
  readonly width: number;
  readonly height: number;
  readonly score: number;
  /** Pixel corners in the photo. */
  readonly box: readonly [number, number, number, number];
}

let found: Promise<PhotoFace[]> | undefined;

/** Every face SSD MobileNet v1 finds in the demo photos at their full resolution (score ≥ 0.5). */
export function demoFaces(): Promise<PhotoFace[]> {
  found ??= (async () => {
    const out: PhotoFace[] = [];
    for (const photo of DEMO_PHOTOS) {
      const { data, info } = await sharp(photo).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const image = tf.tensor3d(data, [info.height, info.width, 3], 'int32');
      try {
        for (const d of await detectDirectly(image)) {
          out.push({ photo, width: info.width, height: info.height, score: d.score, box: [d.box.x, d.box.y, d.box.x + d.box.width, d.box.y + d.box.height] });
        }
      } finally {
        image.dispose();
      }
    }
    return out;
  })();
  return found;
}

/**
 * A square crop around a face — `margin` of the face's larger side added on each side, its
 * centre moved by `shift` (a share of the crop) — resized to `size` and optionally mirrored:
 * encoded as JPEG, as RAF-DB's aligned images are stored.
 */
export async function faceCrop(face: PhotoFace, o: { margin: number; size: number; flip?: boolean; shift?: readonly [number, number] }): Promise<Buffer> {
  const [x1, y1, x2, y2] = face.box;
  const side = Math.min(Math.max(x2 - x1, y2 - y1) * (1 + 2 * o.margin), face.width, face.height);
  const cx = (x1 + x2) / 2 + (o.shift?.[0] ?? 0) * side;
  const cy = (y1 + y2) / 2 + (o.shift?.[1] ?? 0) * side;
  const left = Math.round(Math.min(Math.max(0, cx - side / 2), face.width - side));
  const top = Math.round(Math.min(Math.max(0, cy - side / 2), face.height - side));
  const s = Math.floor(side);
  let image = sharp(face.photo).extract({ left, top, width: s, height: s }).resize(o.size, o.size, { fit: 'fill' });
  if (o.flip) image = image.flop();
  return image.jpeg({ quality: 95 }).toBuffer();
}

/** Images decoded and squeezed whole to size × size as the dataset loaders do, NHWC in [0, 1]. */
export async function squareImages(sources: readonly (string | Buffer)[], size: number): Promise<Float32Array> {
  const px = size * size * 3;
  const bytes = new Uint8Array(sources.length * px);
  for (const [i, src] of sources.entries()) {
    const file = typeof src === 'string' ? { file: src } : await rawSource(src);
    await decodeSquare(file, size, bytes.subarray(i * px, (i + 1) * px));
  }
  return Float32Array.from(bytes, (v) => v / 255);
}

async function rawSource(encoded: Buffer): Promise<{ width: number; height: number; channels: 3; pixels: () => Uint8Array }> {
  const { data, info } = await sharp(encoded).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, pixels: () => new Uint8Array(data) };
}

/** A split of square images without annotated boxes (their boxes are the whole image). */
export function splitOf(images: Float32Array, size: number): Split {
  const count = images.length / (size * size * 3);
  const boxes = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) boxes.set([0, 0, size, size], 4 * i);
  return { size: count, images, labels: new Int32Array(count), boxes };
}
