import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { stratifiedPick } from '../../src/data/stratify.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'count',
  description: 'keeps the labels of N images in total, spread over classes in proportion to their size (Table 4: 400/1000/4000)',
  options: options({ count: Type.Integer({ minimum: 1, default: 1000, description: 'labeled images in total' }) }),
  create: ({ count }) => ({
    name: 'count',
    budget: `${count} labels`,
    split(labels, numClasses, rng) {
      const n = labels.length;
      return stratifiedPick(labels, numClasses, rng, (c) => Math.max(1, Math.round((count * c) / n)));
    },
  }),
});
