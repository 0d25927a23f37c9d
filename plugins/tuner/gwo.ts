import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import type { SearchDimension, Trial } from '../../src/contracts/tuner.ts';
import { greyWolf, type Position } from './internal/grey-wolf.ts';

/** A unit-cube coordinate as a value of the searched range (geometric on a log scale). */
export function fromUnit(u: number, d: SearchDimension): number {
  const v = d.log ? Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min))) : d.min + u * (d.max - d.min);
  // exp∘log can land a rounding error outside the bounds at the ends.
  return Math.min(d.max, Math.max(d.min, v));
}

function checkDimensions(search: readonly SearchDimension[]): void {
  search.forEach((d, i) => {
    const where = `tuner gwo: search[${i}] (${d.path})`;
    if (!(d.min < d.max)) throw new Error(`${where}: min ${d.min} must be below max ${d.max}`);
    if (d.log && d.min <= 0) throw new Error(`${where}: a log-scale range needs min > 0 (got ${d.min})`);
    // The score trains the supervised stage only; a setting elsewhere would not change it.
    if (!d.path.startsWith('pipeline.supervised.'))
      throw new Error(`${where}: only settings under pipeline.supervised can be tuned, since a setting is scored by training the supervised stage`);
  });
}

export default definePlugin({
  kind: 'tuner',
  name: 'gwo',
  description: 'Grey Wolf Optimizer over numeric recipe paths, scored on a validation split carved from the training data (Table 16)',
  options: options({
    wolves: Type.Integer({ minimum: 3, default: 8, description: 'population size (α, β and δ lead the pack)' }),
    iterations: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'moves of the pack after the initial one; wolves × (iterations + 1) settings are scored',
    }),
    validation_fraction: Type.Number({
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      default: 0.2,
      description: 'share of the labeled training images held out (per class) to score settings; the final training uses all of them',
    }),
    trial_max_steps: nullable(Type.Integer({ minimum: 1 }), {
      default: null,
      description: 'supervised steps per scored setting; null: the stage’s own budget',
    }),
    search: Type.Array(
      options(
        {
          path: Type.String({ pattern: '^pipeline\\.supervised\\.' }),
          min: Type.Number(),
          max: Type.Number(),
          log: Type.Boolean({ default: false }),
        },
        { additionalProperties: false },
      ),
      {
        minItems: 1,
        default: [
          { path: 'pipeline.supervised.lr', min: 1e-5, max: 5e-4, log: true },
          { path: 'pipeline.supervised.min_lr', min: 1e-6, max: 1e-4, log: true },
          { path: 'pipeline.supervised.warmup_lr', min: 1e-6, max: 1e-4, log: true },
        ],
        description: 'supervised-stage settings searched within bounds (default: max lr, min lr and warm-up initial lr)',
      },
    ),
  }),
  create(o) {
    checkDimensions(o.search);
    const search = o.search.map((d) => ({ ...d, log: d.log ?? false }));
    const toParams = (x: Position) => Object.fromEntries(search.map((d, j) => [d.path, fromUnit(x[j]!, d)]));
    return {
      name: 'gwo',
      search,
      validationFraction: o.validation_fraction,
      trialMaxSteps: o.trial_max_steps,
      async tune(score, rng, onTrial) {
        const trials: Trial[] = [];
        const best = await greyWolf({
          dims: search.length,
          wolves: o.wolves,
          iterations: o.iterations,
          rng,
          fitness: async (x, at) => {
            const params = toParams(x);
            const s = await score(params);
            const trial: Trial = { index: trials.length, iteration: at.iteration, agent: at.agent, params, score: s };
            trials.push(trial);
            onTrial?.(trial);
            return s;
          },
        });
        return { best: toParams(best.position), bestScore: best.score, trials };
      },
    };
  },
});
