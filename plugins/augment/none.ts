import { definePlugin } from '../../src/core/plugin.ts';
import type { Augmentation } from '../../src/contracts/training.ts';

export default definePlugin<Record<string, never>, Augmentation>({
  kind: 'augment',
  name: 'none',
  description: 'no augmentation',
  options: { type: 'object', properties: {} },
  create: () => ({ name: 'none', apply: (images, boxes) => ({ images: images.clone(), boxes: boxes.clone() }) }),
});
