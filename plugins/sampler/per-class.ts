import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { stratifiedPick } from '../../src/data/stratify.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'per-class',
  description: 'keeps the labels of N seeded random images per class (Table 3: 10/25/100/250)',
  options: options({ per_class: Type.Integer({ minimum: 1, default: 25, description: 'labeled images per class' }) }),
  create: ({ per_class }) => ({
    name: 'per-class',
    budget: `${per_class} labels/class`,
    split: (labels, numClasses, rng) => stratifiedPick(labels, numClasses, rng, () => per_class),
  }),
});
