import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'kfold',
  description: 'K-fold cross-validation on the training set, optionally with a label fraction inside each fold (Tables 5 and 9)',
  status: 'planned',
  plannedReason: 'k-fold sampling arrives with the real-dataset work; use fraction, per-class or count meanwhile',
  options: {
    type: 'object',
    properties: {
      folds: { type: 'integer', minimum: 2, default: 5, description: 'K' },
      fold: { type: 'integer', minimum: 0, default: 0, description: 'which fold is held out (0-based)' },
      fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1, description: 'share of the training folds that keep labels' },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
