import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'tuner',
  name: 'none',
  description: 'no hyper-parameter search: the recipe values are used as written',
  options: options({}),
  create: () => ({
    name: 'none',
    search: [],
    validationFraction: 0,
    trialMaxSteps: null,
    tune: async () => ({ best: {}, bestScore: Number.NaN, trials: [] }),
  }),
});
