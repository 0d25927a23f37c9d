import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin<Record<string, never>, { name: string }>({
  kind: 'tuner',
  name: 'none',
  description: 'no hyper-parameter search: the recipe values are used as written',
  options: { type: 'object', properties: {} },
  create: () => ({ name: 'none' }),
});
