import { definePlugin } from '../../src/core/plugin.ts';
import type { Pretrainer } from '../../src/contracts/stages.ts';

export default definePlugin<Record<string, never>, Pretrainer>({
  kind: 'pretrain',
  name: 'none',
  description: 'no pre-training: fine-tuning starts from the seeded random initialisation',
  options: { type: 'object', properties: {} },
  create: () => ({ name: 'none', run: async () => ({ weights: null, summary: 'no pre-training (random initialisation)' }) }),
});
