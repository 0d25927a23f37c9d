import { definePlugin } from '../../src/core/plugin.ts';
import type { FaceBoxSource } from '../../src/contracts/training.ts';

export default definePlugin<Record<string, never>, FaceBoxSource>({
  kind: 'face-boxes',
  name: 'annotations',
  description: "face boxes from the dataset's own annotations (ground truth on synthetic faces)",
  options: { type: 'object', properties: {} },
  create: () => ({
    name: 'annotations',
    boxes: async (_images, _count, _size, annotated) => annotated,
  }),
});
