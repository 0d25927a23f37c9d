import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'pretrain',
  name: 'none',
  description: 'no pre-training: fine-tuning starts from the seeded random initialisation',
  options: options({}),
  create: () => ({ name: 'none', run: async () => ({ weights: null, summary: 'no pre-training (random initialisation)' }) }),
});
