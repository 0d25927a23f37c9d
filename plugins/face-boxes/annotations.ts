import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'face-boxes',
  name: 'annotations',
  description: "face boxes from the dataset's own annotations (ground truth on synthetic faces)",
  options: options({}),
  create: () => ({
    name: 'annotations',
    boxes: async (_images, _count, _size, annotated) => annotated,
  }),
});
