import { expect } from 'chai';
import { cosineDecayLr, stepDecayLr, warmupCosineLr } from '../../src/train/schedule.ts';

describe('learning-rate schedules', () => {
  // The paper's supervised stage: warm-up from 5e-5 to 1e-4, cosine to 1e-5.
  const s = { totalSteps: 100, warmupSteps: 10, warmupInitLr: 5e-5, maxLr: 1e-4, minLr: 1e-5 };

  it('warms up linearly from the initial rate', () => {
    expect(warmupCosineLr(0, s)).to.be.closeTo(5e-5, 1e-15);
    expect(warmupCosineLr(5, s)).to.be.closeTo(7.5e-5, 1e-15); // halfway: (5e-5 + 1e-4) / 2
    expect(warmupCosineLr(10, s)).to.be.closeTo(1e-4, 1e-15); // end of warm-up: the maximum
  });

  it('decays by a half cosine to the minimum and stays there', () => {
    expect(warmupCosineLr(32.5, s)).to.be.closeTo(1e-5 + 0.5 * 9e-5 * (1 + Math.SQRT1_2), 1e-15); // ¼ of the cosine: 8.68198e-5
    expect(warmupCosineLr(32.5, s)).to.be.closeTo(8.681980515e-5, 1e-13);
    expect(warmupCosineLr(55, s)).to.be.closeTo(5.5e-5, 1e-15); // middle: (1e-4 + 1e-5) / 2
    expect(warmupCosineLr(100, s)).to.be.closeTo(1e-5, 1e-15);
    expect(warmupCosineLr(150, s)).to.be.closeTo(1e-5, 1e-15);
  });

  it('the decay alone holds the maximum through the warm-up (what a training loop warms up towards)', () => {
    expect(cosineDecayLr(0, s)).to.equal(1e-4);
    expect(cosineDecayLr(9, s)).to.equal(1e-4);
    for (const t of [10, 32.5, 55, 100, 150]) expect(cosineDecayLr(t, s)).to.equal(warmupCosineLr(t, s));
  });

  it('handles a schedule without warm-up', () => {
    expect(warmupCosineLr(0, { ...s, warmupSteps: 0 })).to.be.closeTo(1e-4, 1e-15);
    expect(() => warmupCosineLr(0, { ...s, warmupSteps: 200 })).to.throw(/warmupSteps/);
  });

  it('multiplies by gamma at each milestone (the semi-supervised stage: ×0.1 at 20 and 40)', () => {
    const d = { baseLr: 1.5e-4, gamma: 0.1, milestones: [20, 40] };
    expect(stepDecayLr(0, d)).to.be.closeTo(1.5e-4, 1e-15);
    expect(stepDecayLr(19, d)).to.be.closeTo(1.5e-4, 1e-15);
    expect(stepDecayLr(20, d)).to.be.closeTo(1.5e-5, 1e-15);
    expect(stepDecayLr(39.9, d)).to.be.closeTo(1.5e-5, 1e-15);
    expect(stepDecayLr(40, d)).to.be.closeTo(1.5e-6, 1e-15);
    expect(stepDecayLr(45, d)).to.be.closeTo(1.5e-6, 1e-15);
  });
});
