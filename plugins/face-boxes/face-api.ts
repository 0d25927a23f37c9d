/**
 * `face-api`: face boxes from @vladmandic/face-api's detectors — SSD MobileNet v1, or the tiny
 * face detector — with the weights the installed package ships in its model/ folder (never
 * fetched). Its CommonJS build for Node with WebAssembly (dist/face-api.node-wasm.js) runs on the
 * project's own @tensorflow/tfjs: the package declares no dependencies, so its
 * require('@tensorflow/tfjs') resolves to the copy this project imports (checked when it loads).
 *
 * Detection runs on the wasm backend (tens of times faster for these convolutional nets than the
 * JavaScript kernels), and the backend the run chose is made active again afterwards.
 *
 * Each image is set in a grey margin of `pad` times its side before detection: a face that fills
 * an aligned crop is otherwise at the edge of what the detectors were trained on and often missed.
 * One face per image: the most confident; equal scores go to the larger box, then to the box
 * nearest the image's centre. With `several_faces: fallback` an image with more than one face
 * gets the fallback box, as the authors' code does. No face → the fallback box, counted in the notes.
 *
 * `faces` (ssfer predict) finds every face of one photo at its own resolution: first as it is (a
 * margin would shrink the faces of a group photo), then, when none is found, in the grey margin.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { FaceBoxSource, Photo } from '../../src/contracts/training.ts';
import { fileDigest } from './internal/cache.ts';
import { CACHE_OPTION, detectBoxes, FALLBACK_OPTION, type DetectorSession } from './internal/detect.ts';
import { mostConfident, type Box, type Detection } from './internal/detections.ts';

/** What this plugin uses of face-api (the package's own declarations pull in browser types). */
interface FaceApi {
  readonly version: string;
  readonly tf: { readonly Tensor: unknown };
  readonly nets: Record<(typeof MODELS)[keyof typeof MODELS]['net'], { readonly isLoaded: boolean; loadFromDisk(dir: string): Promise<void>; dispose(): void }>;
  readonly SsdMobilenetv1Options: new (o: { minConfidence: number }) => object;
  readonly TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => object;
  detectAllFaces(
    input: tf.Tensor3D,
    options: object,
  ): PromiseLike<{ readonly score: number; readonly box: { x: number; y: number; width: number; height: number } }[]>;
}

const PACKAGE = '@vladmandic/face-api';
const MODELS = {
  'ssd-mobilenet': { net: 'ssdMobilenetv1', weights: 'ssd_mobilenetv1_model.bin' },
  tiny: { net: 'tinyFaceDetector', weights: 'tiny_face_detector_model.bin' },
} as const;
/** face-api's default input size of the tiny face detector. */
const TINY_INPUT = 416;
const BACKEND = 'wasm';

const require = createRequire(import.meta.url);
let loaded: FaceApi | undefined;

/** The face-api package, loaded on first use, so listing or validating plugins never loads it. */
function faceApi(): FaceApi {
  if (!loaded) {
    const api = require(`${PACKAGE}/dist/face-api.node-wasm.js`) as FaceApi;
    // A second copy of tfjs would keep its own tensor classes: face-api's tensors would not be ours.
    if (api.tf.Tensor !== tf.Tensor) {
      const theirs = require.resolve('@tensorflow/tfjs', { paths: [packageDir()] });
      throw new Error(`face-boxes face-api: ${PACKAGE} loaded another copy of @tensorflow/tfjs (${theirs}); run npm dedupe so that it uses the project's own`);
    }
    loaded = api;
  }
  return loaded;
}

function packageDir(): string {
  return path.dirname(require.resolve(`${PACKAGE}/package.json`));
}

/** Makes `name` the active backend; resolves to a function that makes the previous one active again. */
async function switchBackend(name: string): Promise<() => Promise<void>> {
  await tf.ready();
  const previous = tf.getBackend();
  if (previous === name) return async () => {};
  if (!(await tf.setBackend(name))) {
    await tf.setBackend(previous);
    throw new Error(`face-boxes face-api: the ${name} backend could not be initialised`);
  }
  return async () => {
    await tf.setBackend(previous);
    await tf.ready();
  };
}

export default definePlugin({
  kind: 'face-boxes',
  name: 'face-api',
  description:
    "face boxes from @vladmandic/face-api (SSD MobileNet v1, or the tiny face detector) with the weights its package ships, on the wasm backend; one face per image, the most confident (equal scores: the larger box, then the one nearest the centre); no face: the authors' central box [25, 25, 220, 220] at 224 px, scaled, counted in the notes",
  options: options({
    model: choice(['ssd-mobilenet', 'tiny'], {
      default: 'ssd-mobilenet',
      description: 'ssd-mobilenet: SSD MobileNet v1 (512 px input, about 1 s an image); tiny: the tiny face detector (faster, less accurate)',
    }),
    min_confidence: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'lowest score that counts as a face (face-api’s default)' }),
    input_size: Type.Optional(
      Type.Integer({
        minimum: 32,
        multipleOf: 32,
        description: `tiny only: the detector's input size in pixels (when not set: ${TINY_INPUT}); SSD MobileNet v1 always sees 512 px`,
      }),
    ),
    pad: Type.Number({
      minimum: 0,
      maximum: 2,
      default: 0.5,
      description:
        'grey margin added on each side before detection, as a share of the image side (faces that fill an aligned crop are otherwise often missed); 0: none',
    }),
    several_faces: choice(['most-confident', 'fallback'], {
      default: 'most-confident',
      description: "an image with several faces: the most confident one, or the fallback box (the authors' rule)",
    }),
    fallback: FALLBACK_OPTION(),
    cache: CACHE_OPTION,
  }),
  create(o, ctx): FaceBoxSource {
    if (o.input_size !== undefined && o.model !== 'tiny')
      throw new Error(`face-boxes face-api: input_size applies to model: tiny only (SSD MobileNet v1 always sees 512 px); remove it or set model: tiny`);
    const spec = MODELS[o.model];
    const inputSize = o.model === 'tiny' ? (o.input_size ?? TINY_INPUT) : undefined;
    const modelDir = () => path.join(packageDir(), 'model');
    const weightsFile = () => {
      const weights = path.join(modelDir(), spec.weights);
      if (!fs.existsSync(weights)) throw new Error(`face-boxes face-api: ${weights} not found; reinstall ${PACKAGE} (npm ci)`);
      return weights;
    };
    /**
     * Loads the detector on the wasm backend. Its weights are tensors of that backend, loaded for
     * one run of detections and disposed after it (later cells find their boxes in the cache).
     */
    const openDetector = async () => {
      const api = faceApi();
      const net = api.nets[spec.net];
      const restore = await switchBackend(BACKEND);
      const close = async () => {
        if (net.isLoaded) net.dispose();
        await restore();
      };
      try {
        if (!net.isLoaded) await net.loadFromDisk(modelDir());
      } catch (err) {
        await close();
        throw err;
      }
      const options = inputSize
        ? new api.TinyFaceDetectorOptions({ inputSize, scoreThreshold: o.min_confidence })
        : new api.SsdMobilenetv1Options({ minConfidence: o.min_confidence });
      return { api, options, close };
    };
    const label = `face-api ${o.model}${inputSize ? ` (${inputSize} px)` : ''}`;
    return {
      name: 'face-api',
      detector: `${label}, min confidence ${o.min_confidence}`,
      // A photo is searched as it is first (a grey margin would shrink the faces of a group photo),
      // then, where nothing was found, in the margin (a face that fills the photo).
      async faces(photo) {
        weightsFile();
        const { api, options, close } = await openDetector();
        try {
          const found = await detectPhoto(api, options, photo, 0);
          const faces = found.length === 0 && o.pad > 0 ? await detectPhoto(api, options, photo, o.pad) : found;
          return faces.sort((a, b) => b.score - a.score);
        } finally {
          await close();
        }
      },
      boxes(split, request) {
        const weights = weightsFile();
        const version = (JSON.parse(fs.readFileSync(path.join(packageDir(), 'package.json'), 'utf8')) as { version: string }).version;
        return detectBoxes(
          {
            label,
            settings: {
              detector: 'face-api',
              version,
              weights: fileDigest(weights),
              model: o.model,
              min_confidence: o.min_confidence,
              input_size: inputSize ?? null,
              pad: o.pad,
              several_faces: o.several_faces,
            },
            cacheDir: o.cache === null ? null : path.resolve(ctx.recipeDir, o.cache),
            fallback: o.fallback,
            missing: o.several_faces === 'fallback' ? 'without exactly one detected face' : 'without a detected face',
            async open(imageSize): Promise<DetectorSession> {
              const { api, options, close } = await openDetector();
              return {
                detect: async (images, i) => {
                  const faces = await detectPadded(api, options, images, i, imageSize, o.pad);
                  if (o.several_faces === 'fallback' && faces.length !== 1) return null;
                  return mostConfident(faces, imageSize)?.box ?? null;
                },
                close,
              };
            },
          },
          split,
          request,
        );
      },
    };
  },
});

/** The faces face-api finds in image `i` of an NHWC [0, 1] batch set in a grey margin, in the image's pixels. */
async function detectPadded(api: FaceApi, options: object, images: Float32Array, i: number, size: number, pad: number): Promise<Detection[]> {
  const n = size * size * 3;
  const image = tf.tidy(() => tf.mul(tf.tensor3d(images.subarray(i * n, (i + 1) * n), [size, size, 3]), 255)) as tf.Tensor3D;
  return detectIn(api, options, image, pad);
}

/** The faces face-api finds in a photo (8-bit RGB) set in a grey margin of `pad` times each side, in the photo's pixels. */
function detectPhoto(api: FaceApi, options: object, photo: Photo, pad: number): Promise<Detection[]> {
  const image = tf.tensor3d(Float32Array.from(photo.pixels), [photo.height, photo.width, 3]);
  return detectIn(api, options, image, pad);
}

/** Detects faces in an [H, W, 3] image of 0–255 values (disposed here) set in a grey margin; boxes in the image's pixels, clipped to it. */
async function detectIn(api: FaceApi, options: object, image: tf.Tensor3D, pad: number): Promise<Detection[]> {
  const [height, width] = image.shape;
  const mx = Math.round(pad * width);
  const my = Math.round(pad * height);
  const input = (
    mx > 0 || my > 0
      ? tf.tidy(() =>
          tf.pad(
            image,
            [
              [my, my],
              [mx, mx],
              [0, 0],
            ],
            127.5,
          ),
        )
      : image
  ) as tf.Tensor3D;
  let found;
  try {
    found = await api.detectAllFaces(input, options);
  } finally {
    if (input !== image) input.dispose();
    image.dispose();
  }
  const clip = (v: number, margin: number, side: number) => Math.min(side, Math.max(0, v - margin));
  return found
    .map(({ score, box: b }) => ({
      score,
      box: [clip(b.x, mx, width), clip(b.y, my, height), clip(b.x + b.width, mx, width), clip(b.y + b.height, my, height)] as Box,
    }))
    .filter((d) => d.box[2] > d.box[0] && d.box[3] > d.box[1]);
}
