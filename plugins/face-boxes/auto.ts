/**
 * `auto`: the dataset's annotated box where it has one (RAF-DB's original layout, AffectNet, an
 * image folder's boxes file, the synthetic faces), the detector's elsewhere (RAF-DB's aligned
 * faces, FERPlus, Adience, an image folder without boxes): the whole-image box a dataset
 * without annotations carries would make FaceMix's κ = 1 − IoU zero for every pair.
 */
import { definePlugin } from '../../src/core/plugin.ts';
import { options, slot } from '../../src/core/schema.ts';
import type { FaceBoxSource, Photo } from '../../src/contracts/training.ts';
import { annotationNote, withoutAnnotation } from './internal/annotated.ts';

const NOT_DETECTORS = ['auto', 'annotations'];

export default definePlugin({
  kind: 'face-boxes',
  name: 'auto',
  description: "the dataset's annotated face boxes where it has them, a face detector's (face-api by default) for the images without one",
  options: options({
    detector: slot('face-boxes', 'face-api', 'the face detector for images without an annotated box (face-api or onnx)'),
  }),
  create(o, ctx): FaceBoxSource {
    if (NOT_DETECTORS.includes(o.detector.use))
      throw new Error(`face-boxes auto: detector: '${o.detector.use}' is not a face detector; choose face-api or onnx`);
    const detector = ctx.resolve('face-boxes', o.detector);
    return {
      name: 'auto',
      // A photo has no annotations: its faces are the detector's.
      ...(detector.faces ? { detector: detector.detector, faces: (photo: Photo) => detector.faces!(photo) } : {}),
      async boxes(split, request) {
        const missing = withoutAnnotation(split);
        if (missing.length === 0) return { boxes: split.boxes, note: annotationNote(split) };
        const found = await detector.boxes(split, { ...request, only: missing });
        if (missing.length === split.size) return { boxes: found.boxes, note: `${found.note} (the dataset has no annotated boxes)` };
        return {
          boxes: found.boxes,
          note: `face boxes: annotated for ${split.size - missing.length} of ${split.size} images; for the other ${missing.length}, ${found.note.replace(/^face boxes: /, '')}`,
        };
      },
    };
  },
});
