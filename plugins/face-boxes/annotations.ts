import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import { annotationNote } from './internal/annotated.ts';

export default definePlugin({
  kind: 'face-boxes',
  name: 'annotations',
  description: "face boxes from the dataset's own annotations (ground truth on synthetic faces); the whole image where a dataset has none",
  options: options({}),
  create: () => ({
    name: 'annotations',
    boxes: async (split) => ({ boxes: split.boxes, note: annotationNote(split) }),
  }),
});
