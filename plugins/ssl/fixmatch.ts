import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import { pseudoLabelOptions, semiStage, semiStageOptions } from './internal/semi.ts';

// Teacher = student: no momentum, and the evaluated weights are the student's by construction.
export default definePlugin({
  kind: 'ssl',
  name: 'fixmatch',
  description: 'FixMatch: the EMA-teacher recipe with teacher = student (no EMA)',
  options: options({ ...pseudoLabelOptions(), ...semiStageOptions() }),
  create: (o, pctx) => semiStage('fixmatch', 'student', o, pctx),
});
