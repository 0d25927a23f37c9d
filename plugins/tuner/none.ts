import { definePlugin } from '../../src/core/plugin.ts';
import type { Tuner } from '../../src/contracts/tuner.ts';

export default definePlugin<Record<string, never>, Tuner>({
  kind: 'tuner',
  name: 'none',
  description: 'no hyper-parameter search: the recipe values are used as written',
  options: { type: 'object', properties: {} },
  create: () => ({
    name: 'none',
    search: [],
    validationFraction: 0,
    trialMaxSteps: null,
    tune: async () => ({ best: {}, bestScore: Number.NaN, trials: [] }),
  }),
});
