import { definePlugin } from '../../src/core/plugin.ts';
import { weakOptions } from './weak.ts';

export default definePlugin({
  kind: 'augment',
  name: 'strong',
  description: 'random resized crop + horizontal flip + RandAugment (N ops of the standard 14 at magnitude M)',
  status: 'planned',
  plannedReason: 'RandAugment arrives with the semi-supervised stage',
  options: {
    type: 'object',
    properties: {
      ...weakOptions,
      ops: { type: 'integer', minimum: 0, maximum: 14, default: 2, description: 'RandAugment N: operations per image' },
      magnitude: { type: 'number', minimum: 0, maximum: 30, default: 9, description: 'RandAugment M (0–30 scale as in timm)' },
      magnitude_std: { type: 'number', minimum: 0, default: 0.5, description: 'noise on M per image (the authors: 0.5)' },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
