import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

export default definePlugin({
  kind: 'ssl',
  name: 'none',
  description: 'no semi-supervised stage: the supervised model is final',
  options: options({}),
  create: () => ({ name: 'none', run: async () => ({ summary: 'no semi-supervised stage' }) }),
});
