import type { FineTuningStage } from '../../src/contracts/stages.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import { pseudoLabelOptions, runSemi, semiStageOptions } from './internal/semi.ts';

// Teacher = student: no momentum, and the evaluated weights are the student's by construction.
export default definePlugin({
  kind: 'ssl',
  name: 'fixmatch',
  description: 'FixMatch: the EMA-teacher recipe with teacher = student (no EMA)',
  options: options({ ...pseudoLabelOptions(), ...semiStageOptions() }),
  create(o, pctx): FineTuningStage {
    const weak = pctx.resolve('augment', o.weak);
    const strong = pctx.resolve('augment', o.strong);
    return {
      name: 'fixmatch',
      // The supervised stage's EMA is the better model to pseudo-label from.
      startsFrom: 'ema',
      run: async (cell, hooks) => runSemi(cell, hooks, o, { name: 'fixmatch', teacher: 'student', weak, strong }),
    };
  },
});
