import { definePlugin } from '../../src/core/plugin.ts';
import type { SemiSupervised } from '../../src/contracts/stages.ts';
import type { Augmentation } from '../../src/contracts/training.ts';
import { runSemi } from './internal/semi.ts';
import { sslOptions, type SslPluginOptions } from './ema-teacher.ts';

// Teacher = student: no momentum, and the evaluated weights are the student's by construction.
const options = sslOptions(0);
delete (options.properties as Record<string, unknown>).momentum;
delete (options.properties as Record<string, unknown>).evaluate;

export default definePlugin<Omit<SslPluginOptions, 'momentum' | 'evaluate'>, SemiSupervised>({
  kind: 'ssl',
  name: 'fixmatch',
  description: 'FixMatch: the EMA-teacher recipe with teacher = student (no EMA)',
  options,
  create(o, pctx) {
    const weak = pctx.resolve<Augmentation>('augment', o.weak);
    const strong = pctx.resolve<Augmentation>('augment', o.strong);
    return { name: 'fixmatch', run: async (ctx) => runSemi(ctx, o, { name: 'fixmatch', teacher: 'student', weak, strong }) };
  },
});
