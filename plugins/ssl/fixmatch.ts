import { definePlugin } from '../../src/core/plugin.ts';
import { sslOptions } from './ema-teacher.ts';

const options = sslOptions(0);
delete (options.properties as Record<string, unknown>).momentum;

export default definePlugin({
  kind: 'ssl',
  name: 'fixmatch',
  description: 'FixMatch: the EMA-teacher recipe with teacher = student (no EMA)',
  status: 'planned',
  plannedReason: 'semi-supervised fine-tuning arrives with the full pipeline; set pipeline.semi.use: none meanwhile',
  options,
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
