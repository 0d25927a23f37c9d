import fs from 'node:fs';
import path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { fileDigest } from './internal/cache.ts';
import { CACHE_OPTION, detectBoxes, FALLBACK_OPTION } from './internal/detect.ts';
import { decodeOutput, singleFace, toImage } from './internal/detections.ts';
import { detectorInput } from './internal/resize.ts';

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
    model: Type.String({
      description: 'path of the .onnx detector, relative to the recipe; output [1, N, 6+] (YOLOv7-face) or [N, 5] (x1, y1, x2, y2, score)',
    }),
    input_size: Type.Integer({ minimum: 32, default: 224, description: 'detector input size in pixels' }),
    confidence: Type.Number({ minimum: 0, maximum: 1, default: 0.4, description: 'minimum detection score' }),
    nms_iou: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'non-maximum suppression IoU' }),
    fallback: FALLBACK_OPTION('box used when the detector does not find exactly one face (at 224 px, scaled to the image)'),
    cache: CACHE_OPTION,
  }),
  create(o, ctx) {
    const model = path.resolve(ctx.recipeDir, o.model);
    if (!fs.existsSync(model)) throw new Error(`face-boxes onnx: model file not found: ${model}; model: is relative to the recipe's folder`);
    return {
      name: 'onnx',
      boxes: (split, request) => {
        const digest = fileDigest(model);
        return detectBoxes(
          {
            label: `ONNX detector ${path.basename(model)}`,
            settings: { detector: 'onnx', model: digest, input_size: o.input_size, confidence: o.confidence, nms_iou: o.nms_iou },
            cacheDir: o.cache === null ? null : path.resolve(ctx.recipeDir, o.cache),
            fallback: o.fallback,
            missing: 'without exactly one detected face',
            async open(imageSize) {
              const s = await session(model, digest);
              return {
                async detect(images, i) {
                  const found = await detect(s, detectorInput(images, i, imageSize, o.input_size), o.input_size);
                  const face = singleFace(decodeOutput(found.data, found.dims), o.confidence, o.nms_iou);
                  return face ? toImage(face, o.input_size, imageSize) : null;
                },
                close: async () => {},
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
