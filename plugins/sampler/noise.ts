import { definePlugin } from '../../src/core/plugin.ts';
import { options, slot, Type } from '../../src/core/schema.ts';
import { Rng } from '../../src/core/rng.ts';
import { flipLabels } from './internal/flip.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'noise',
  description: 'symmetric label noise on the labels another sampler keeps: round(ratio·n) of them flipped to a uniformly drawn other class (Table 8)',
  options: options({
    ratio: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'share of the kept labels replaced by a different class (0.1 = 10 %)' }),
    sampler: slot('sampler', 'fraction', 'which images keep labels before the noise is injected'),
  }),
  create({ ratio, sampler }, ctx) {
    const inner = ctx.resolve('sampler', sampler);
    return {
      name: 'noise',
      budget: `${inner.budget}, ${+(ratio * 100).toFixed(4)}% noise`,
      split(labels, numClasses, _rng, info) {
        // The caller's stream varies with the ratio. Drawing from the recipe seed instead keeps
        // the noise levels of a table paired: the same labeled images at every ratio, and the
        // labels flipped at a lower ratio flipped the same way at the higher ones.
        const clean = inner.split(labels, numClasses, Rng.derive(ctx.seed, 'noise', 'clean'), info);
        const noisy = flipLabels(
          clean.labels ?? labels,
          clean.labeled,
          numClasses,
          ratio,
          Rng.derive(ctx.seed, 'noise', 'order'),
          Rng.derive(ctx.seed, 'noise', 'class'),
        );
        return { ...clean, labels: noisy.labels };
      },
    };
  },
});
