import { expect } from 'chai';
import { bar, duration } from '../../src/core/format.ts';
import { eta } from '../../src/pipeline/progress.ts';

describe('progress', () => {
  it('projects the units after the current one at the finished units’ mean time', () => {
    // 2 units took 100 s; the current one is half through a stage of 10 s; 3 more follow.
    const left = eta({ finished: 2, finishedSeconds: 100, after: 3, unitSeconds: 30, stageSeconds: 10, stageFraction: 0.5 });
    expect(left).to.deep.equal({ seconds: 50 * 0.5 + 50 * 3, of: 'run' }); // 175
    // Two workers share the three units after it: this one may expect 1.5 of them.
    expect(eta({ finished: 2, finishedSeconds: 100, after: 1.5, unitSeconds: 30, stageSeconds: 10, stageFraction: 0.5 }).seconds).to.equal(25 + 75);
  });

  it('does not show a unit far slower than the finished ones as all but done', () => {
    // A linear probe took 7 s; the CNN after it is 15 % through a stage that has run 40 s.
    const left = eta({ finished: 1, finishedSeconds: 7, after: 0, unitSeconds: 40, stageSeconds: 40, stageFraction: 0.15 });
    expect(left.seconds).to.be.closeTo((40 / 0.15) * 0.85, 1e-9); // 226.7 s, not 7 × 0.85 = 6 s
  });

  it('before any unit finished, projects from the current unit’s pace', () => {
    const left = eta({ finished: 0, finishedSeconds: 0, after: 1, unitSeconds: 20, stageSeconds: 20, stageFraction: 0.25 });
    expect(left.seconds).to.equal(60 + 80); // this unit's rest, then one like it
    // A later stage: 540 s of pre-training done, the supervised stage 38 % through in 150 s.
    const later = eta({ finished: 0, finishedSeconds: 0, after: 0, unitSeconds: 690, stageSeconds: 150, stageFraction: 0.38 });
    expect(later.seconds).to.be.closeTo((150 / 0.38) * 0.62, 1e-9); // 245 s, not 690 / 0.38 × 0.62 = 18.8 min
  });

  it('counts a shared pre-training once, not once per unit after it', () => {
    // The first unit's MAE, 10 % through in 12 s, with 47 units after it: nothing says yet what they take.
    const first = eta({ finished: 0, finishedSeconds: 0, after: 47, unitSeconds: 0, stageSeconds: 12, stageFraction: 0.1, shared: true });
    expect(first).to.deep.equal({ seconds: 108, of: 'stage' }); // not 120 s × 48 = 1h36m
    // Its supervised stage 25 % through in 20 s (the 120 s of pre-training not in unitSeconds): each later unit like this one.
    const next = eta({ finished: 0, finishedSeconds: 0, after: 47, unitSeconds: 20, stageSeconds: 20, stageFraction: 0.25 });
    expect(next).to.deep.equal({ seconds: 60 + 80 * 47, of: 'run' });
    // Two units of 70 s finished; the third computes another pre-training, half through in 30 s.
    const another = eta({ finished: 2, finishedSeconds: 140, after: 5, unitSeconds: 0, stageSeconds: 30, stageFraction: 0.5, shared: true });
    expect(another).to.deep.equal({ seconds: 30 + 70 * 6, of: 'run' });
  });

  it('draws bars and durations', () => {
    expect(bar(0.5, 4)).to.equal('[##..]');
    expect(duration(59.4)).to.equal('59s');
    expect(duration(3725)).to.equal('1h02m');
    expect(duration(Number.NaN)).to.equal('?');
  });
});
