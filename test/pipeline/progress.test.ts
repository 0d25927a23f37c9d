import { expect } from 'chai';
import { bar, duration } from '../../src/core/format.ts';
import { eta } from '../../src/pipeline/progress.ts';

describe('progress', () => {
  it('projects the units after the current one at the finished units’ mean time', () => {
    // 2 units took 100 s; the current one is half through a stage of 10 s; 3 more follow.
    const left = eta({ finished: 2, finishedSeconds: 100, after: 3, unitSeconds: 30, stageSeconds: 10, stageFraction: 0.5 });
    expect(left).to.equal(50 * 0.5 + 50 * 3); // 175
  });

  it('does not show a unit far slower than the finished ones as all but done', () => {
    // A linear probe took 7 s; the CNN after it is 15 % through a stage that has run 40 s.
    const left = eta({ finished: 1, finishedSeconds: 7, after: 0, unitSeconds: 40, stageSeconds: 40, stageFraction: 0.15 });
    expect(left).to.be.closeTo((40 / 0.15) * 0.85, 1e-9); // 226.7 s, not 7 × 0.85 = 6 s
  });

  it('before any unit finished, projects from the current unit’s pace', () => {
    const left = eta({ finished: 0, finishedSeconds: 0, after: 1, unitSeconds: 20, stageSeconds: 20, stageFraction: 0.25 });
    expect(left).to.equal(60 + 80); // this unit's rest, then one like it
    // A later stage: 540 s of pre-training done, the supervised stage 38 % through in 150 s.
    const later = eta({ finished: 0, finishedSeconds: 0, after: 0, unitSeconds: 690, stageSeconds: 150, stageFraction: 0.38 });
    expect(later).to.be.closeTo((150 / 0.38) * 0.62, 1e-9); // 245 s, not 690 / 0.38 × 0.62 = 18.8 min
  });

  it('draws bars and durations', () => {
    expect(bar(0.5, 4)).to.equal('[##..]');
    expect(duration(59.4)).to.equal('59s');
    expect(duration(3725)).to.equal('1h02m');
    expect(duration(Number.NaN)).to.equal('?');
  });
});
