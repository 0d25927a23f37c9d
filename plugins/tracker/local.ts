import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin<{ every: number }, { name: string; every: number }>({
  kind: 'tracker',
  name: 'local',
  description: 'results/<recipe>/<timestamp>/: resolved recipe, per-cell metrics.json, curves and confusion matrices, table.md and table.json',
  options: {
    type: 'object',
    properties: { every: { type: 'integer', minimum: 1, default: 10, description: 'log training metrics every N steps' } },
  },
  create: (o) => ({ name: 'local', every: o.every }),
});
