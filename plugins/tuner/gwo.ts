import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin({
  kind: 'tuner',
  name: 'gwo',
  description: 'Grey Wolf Optimizer over numeric recipe paths, scored on a validation split carved from the training data (Table 16)',
  status: 'planned',
  plannedReason: 'GWO tuning arrives with the full pipeline',
  options: {
    type: 'object',
    properties: {
      wolves: { type: 'integer', minimum: 2, default: 8, description: 'population size' },
      iterations: { type: 'integer', minimum: 1, default: 10 },
      validation_fraction: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2, description: 'share of the labeled training images held out to score wolves' },
      search: {
        type: 'array',
        minItems: 1,
        default: [
          { path: 'pipeline.supervised.lr', min: 1e-5, max: 5e-4, log: true },
          { path: 'pipeline.supervised.min_lr', min: 1e-6, max: 1e-4, log: true },
          { path: 'pipeline.supervised.warmup_lr', min: 1e-6, max: 1e-4, log: true },
        ],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['path', 'min', 'max'],
          properties: { path: { type: 'string' }, min: { type: 'number' }, max: { type: 'number' }, log: { type: 'boolean', default: false } },
        },
        description: 'recipe paths searched within bounds (default: the supervised stage max lr, min lr and warm-up initial lr)',
      },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
