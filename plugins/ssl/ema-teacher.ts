import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import { pseudoLabelOptions, semiStage, semiStageOptions } from './internal/semi.ts';

export default definePlugin({
  kind: 'ssl',
  name: 'ema-teacher',
  description: 'EMA-teacher: pseudo-labels from an EMA of the student on weak views, student trained on strong views above threshold τ',
  options: options({
    momentum: Type.Number({ minimum: 0, maximum: 1, default: 0.999, description: 'teacher EMA momentum m: θ_t ← m·θ_t + (1 − m)·θ_s' }),
    ...pseudoLabelOptions(),
    evaluate: choice(['teacher', 'student'], {
      default: 'teacher',
      description: 'weights the stage leaves in the model for evaluation: the EMA teacher (mean-teacher practice) or the student',
    }),
    ...semiStageOptions(),
  }),
  create: (o, pctx) => semiStage('ema-teacher', 'ema', o, pctx),
});
