import { definePlugin } from '../../src/core/plugin.ts';
import type { FaceBoxSource } from '../../src/contracts/training.ts';
import { annotationNote } from './internal/annotated.ts';

export default definePlugin<Record<string, never>, FaceBoxSource>({
  kind: 'face-boxes',
  name: 'annotations',
  description: "face boxes from the dataset's own annotations (ground truth on synthetic faces); the whole image where a dataset has none",
  options: { type: 'object', properties: {} },
  create: () => ({
    name: 'annotations',
    boxes: async (split) => ({ boxes: split.boxes, note: annotationNote(split) }),
  }),
});
