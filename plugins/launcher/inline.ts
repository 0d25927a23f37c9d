import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';

/** Every unit in the process of `ssfer run`, one after another: every cell's seed 0, then every cell's seed 1, … */
export default definePlugin({
  kind: 'launcher',
  name: 'inline',
  description: 'trains every unit (a seed of a cell) in the process of ssfer run, one after another',
  options: options({}),
  create: () => ({
    name: 'inline',
    inProcess: true,
    detachable: false,
    maxRetries: 0,
    launch: (run) => run.runHere(),
  }),
});
