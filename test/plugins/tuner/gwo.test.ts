import { expect } from 'chai';
import { Rng } from '../../../src/core/rng.ts';
import { createRegistry } from '../../../src/core/registry.ts';
import { greyWolf, wolfStep } from '../../../plugins/tuner/internal/grey-wolf.ts';
import { fromUnit } from '../../../plugins/tuner/gwo.ts';

const sequence = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('grey wolf optimizer', () => {
  it('moves a wolf to the mean of the leaders when A = 0 (r1 = ½, any a)', () => {
    const x = wolfStep([0.5], [[0.2], [0.4], [0.6]], 1, sequence([0.5, 0.5]));
    expect(x[0]).to.be.closeTo((0.2 + 0.4 + 0.6) / 3, 1e-12);
  });

  it('follows X_L = L − A·|C·L − x| with hand values (a = 1, r1 = 1 → A = 1, r2 = ½ → C = 1)', () => {
    // D = |L − 0.5| = 0.3, 0.1, 0.1 → X = −0.1, 0.3, 0.5 → mean 0.7 / 3
    const x = wolfStep([0.5], [[0.2], [0.4], [0.6]], 1, sequence([1, 0.5]));
    expect(x[0]).to.be.closeTo(0.7 / 3, 1e-12);
    // Clipped to the unit interval.
    expect(wolfStep([0], [[1], [1], [1]], 2, sequence([0, 1]))[0]).to.equal(1);
  });

  it('finds the maximum of a smooth function, scoring wolves × (iterations + 1) settings, reproducibly', async () => {
    const target = [0.3, 0.7];
    const f = async (x: number[]) => -((x[0]! - target[0]!) ** 2 + (x[1]! - target[1]!) ** 2);
    let calls = 0;
    const run = () => greyWolf({ dims: 2, wolves: 8, iterations: 20, rng: new Rng(4), fitness: (x) => (calls++, f(x)) });
    const best = await run();
    expect(calls).to.equal(8 * 21);
    expect(best.position[0]).to.be.closeTo(0.3, 0.03);
    expect(best.position[1]).to.be.closeTo(0.7, 0.03);
    expect((await run()).position).to.deep.equal(best.position);
  });

  it('maps the unit interval onto the searched range, geometrically on a log scale', () => {
    expect(fromUnit(0.5, { path: 'p', min: 1e-5, max: 1e-3, log: true })).to.be.closeTo(1e-4, 1e-12);
    expect(fromUnit(0.25, { path: 'p', min: 2, max: 6, log: false })).to.equal(3);
  });

  it('the plugin reports every scored setting within bounds and returns the best one', async () => {
    const registry = await createRegistry();
    const gwo = registry.create('tuner', { use: 'gwo', wolves: 4, iterations: 2 }, { seed: 1, scale: 'smoke', recipeDir: '.' });
    expect(gwo.search.map((d) => d.path)).to.deep.equal(['pipeline.supervised.lr', 'pipeline.supervised.min_lr', 'pipeline.supervised.warmup_lr']);
    // Score: closeness of log10(lr) to −4.
    const result = await gwo.tune(async (p) => -Math.abs(Math.log10(p['pipeline.supervised.lr']!) + 4), new Rng(9));
    expect(result.trials).to.have.length(12);
    for (const t of result.trials) {
      expect(t.params['pipeline.supervised.lr']).to.be.within(1e-5, 5e-4);
      expect(t.params['pipeline.supervised.min_lr']).to.be.within(1e-6, 1e-4);
    }
    expect(result.bestScore).to.equal(Math.max(...result.trials.map((t) => t.score)));
    expect(result.best).to.deep.equal(result.trials.find((t) => t.score === result.bestScore)!.params);
  });

  it('refuses a search outside the supervised stage and a log range that includes 0', async () => {
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    expect(() => registry.create('tuner', { use: 'gwo', search: [{ path: 'pipeline.supervised.lr', min: 0, max: 1, log: true }] }, ctx)).to.throw(
      /log-scale range needs min > 0/,
    );
    expect(() => registry.create('tuner', { use: 'gwo', search: [{ path: 'pipeline.supervised.lr', min: 1, max: 1 }] }, ctx)).to.throw(
      /min 1 must be below max 1/,
    );
  });
});
