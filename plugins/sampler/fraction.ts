import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { fractionQuota, stratifiedPick } from '../../src/data/stratify.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'fraction',
  description: 'keeps the labels of a stratified, seeded fraction of the training set; the rest is the unlabeled pool',
  options: options({
    fraction: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.1, description: 'share of training images that keep their labels (0.05 = 5 %)' }),
  }),
  create: ({ fraction }) => ({
    name: 'fraction',
    budget: `${+(fraction * 100).toFixed(4)}%`,
    split: (labels, numClasses, rng) => stratifiedPick(labels, numClasses, rng, fractionQuota(fraction)),
  }),
});
