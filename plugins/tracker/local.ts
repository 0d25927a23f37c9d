import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';

/**
 * The local results folder is always written by the run itself; this tracker adds nothing to it,
 * so choosing it means "no remote tracking".
 */
export default definePlugin({
  kind: 'tracker',
  name: 'local',
  description: 'results/<recipe>/<timestamp>/ only: resolved recipe, per-cell metrics.json, curves and confusion matrices, table.md and table.json',
  options: options({ every: Type.Integer({ minimum: 1, default: 10, description: 'log training metrics every N steps' }) }),
  create: (o) => ({
    name: 'local',
    every: o.every,
    startRun: async () => {},
    startCell: async () => {},
    logMetrics: () => {},
    endCell: async () => {},
    summarizeCell: async () => {},
    endRun: async () => {},
    // A launcher's workers write the same results folder: nothing to hand them.
    share: async () => null,
    join: async () => {},
  }),
});
