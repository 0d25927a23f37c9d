import fs from 'node:fs';
import path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import { BoxCache, fileDigest, imageDigests, sha256 } from './internal/cache.ts';
import { decodeOutput, singleFace, toImage, type Box } from './internal/detections.ts';
import { detectorInput } from './internal/resize.ts';

/** The size the fallback box is written at (the authors' detector input). */
const FALLBACK_SIZE = 224;

// One session per model file for the process: every cell of a table detects with the same one.
const sessions = new Map<string, Promise<InferenceSession>>();

function session(file: string, digest: string): Promise<InferenceSession> {
  let s = sessions.get(digest);
  if (!s) {
    // Loaded on first use, so listing or validating plugins never loads the native runtime.
    s = import('onnxruntime-node').then((ort) => ort.InferenceSession.create(file, { logSeverityLevel: 3 }));
    sessions.set(digest, s);
    s.catch(() => sessions.delete(digest));
  }
  return s;
}

async function detect(s: InferenceSession, input: Float32Array, size: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const { Tensor } = await import('onnxruntime-node');
  const result = await s.run({ [s.inputNames[0]!]: new Tensor('float32', input, [1, 3, size, size]) });
  const out = result[s.outputNames[0]!]!;
  const data = out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
  return { data, dims: out.dims };
}

export default definePlugin({
  kind: 'face-boxes',
  name: 'onnx',
  description: 'face boxes from an ONNX face detector run with onnxruntime-node (the paper: YOLOv7-face); the fallback box unless exactly one face is found',
  options: options({
    model: Type.String({ description: 'path of the .onnx detector, relative to the recipe; output [1, N, 6+] (YOLOv7-face) or [N, 5] (x1, y1, x2, y2, score)' }),
    input_size: Type.Integer({ minimum: 32, default: 224, description: 'detector input size in pixels' }),
    confidence: Type.Number({ minimum: 0, maximum: 1, default: 0.4, description: 'minimum detection score' }),
    nms_iou: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'non-maximum suppression IoU' }),
    fallback: Type.Unsafe<[number, number, number, number]>({
      type: 'array',
      items: Type.Number(),
      minItems: 4,
      maxItems: 4,
      default: [25, 25, 220, 220],
      description: 'box used when the detector does not find exactly one face (at 224 px, scaled to the image)',
    }),
    cache: nullable(Type.String(), { default: null, description: 'folder keeping the boxes across runs, relative to the recipe; null: kept in memory for the run only' }),
  }),
  create(o, ctx) {
    const model = path.resolve(ctx.recipeDir, o.model);
    if (!fs.existsSync(model)) throw new Error(`face-boxes onnx: model file not found: ${model}; model: is relative to the recipe's folder`);
    const cacheDir = o.cache === null ? null : path.resolve(ctx.recipeDir, o.cache);
    return {
      name: 'onnx',
      async boxes(images, count, imageSize) {
        const digest = fileDigest(model);
        const settings = { model: digest, input_size: o.input_size, confidence: o.confidence, nms_iou: o.nms_iou, fallback: o.fallback, imageSize };
        const cache = new BoxCache(sha256(JSON.stringify(settings)).slice(0, 32), cacheDir);
        const fallback = toImage(o.fallback, FALLBACK_SIZE, imageSize);
        const out = new Float32Array(count * 4);
        const keys = imageDigests(images, count, imageSize);
        try {
          for (let i = 0; i < count; i++) {
            const key = keys[i]!;
            let box: Box | undefined = cache.get(key);
            if (!box) {
              const found = await detect(await session(model, digest), detectorInput(images, i, imageSize, o.input_size), o.input_size);
              const face = singleFace(decodeOutput(found.data, found.dims), o.confidence, o.nms_iou);
              box = face ? toImage(face, o.input_size, imageSize) : fallback;
              cache.set(key, box);
            }
            out.set(box, 4 * i);
          }
        } finally {
          cache.save();
        }
        return out;
      },
    };
  },
});
