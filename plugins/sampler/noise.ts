import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'noise',
  description: 'a label fraction whose kept labels are flipped symmetrically at a given rate (Table 8)',
  status: 'planned',
  plannedReason: 'label-noise sampling arrives with the real-dataset work',
  options: {
    type: 'object',
    properties: {
      fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.25, description: 'share of training images that keep labels' },
      noise: { type: 'number', minimum: 0, maximum: 1, default: 0, description: 'share of kept labels replaced by a different random class' },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
