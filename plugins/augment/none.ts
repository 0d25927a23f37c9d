import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'augment',
  name: 'none',
  description: 'no augmentation',
  options: options({}),
  create: () => ({ name: 'none', apply: (images, boxes) => ({ images: images.clone(), boxes: boxes.clone() }) }),
});
