import type { FineTuningStage } from '../../src/contracts/stages.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'ssl',
  name: 'none',
  description: 'no semi-supervised stage: the supervised model is final',
  options: options({}),
  // It trains nothing: the supervised stage's weights and its EMA stay as they are for evaluation.
  create: (): FineTuningStage => ({ name: 'none', startsFrom: 'weights', run: async () => ({ summary: 'no semi-supervised stage' }) }),
});
