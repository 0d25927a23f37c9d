import { definePlugin } from '../../src/core/plugin.ts';
import type { SemiSupervised } from '../../src/contracts/stages.ts';

export default definePlugin<Record<string, never>, SemiSupervised>({
  kind: 'ssl',
  name: 'none',
  description: 'no semi-supervised stage: the supervised model is final',
  options: { type: 'object', properties: {} },
  create: () => ({ name: 'none', run: async () => ({ summary: 'no semi-supervised stage' }) }),
});
