import { expect } from 'chai';
import { authorsEpochCosineLr, timmCosineLr, cosineDecayLr, stepDecayLr, warmupCosineLr } from '../../src/train/schedule.ts';

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

describe('the authors’ supervised schedule (timm CosineLRScheduler, one update per epoch)', () => {
  // Reference rates: timm's own scheduler (timm/scheduler/cosine_lr.py) driven as fine-tune.py
  // drives it — CosineLRScheduler(t_initial = epochs // 2, lr_min, warmup_lr_init, warmup_t,
  // t_in_epochs = False), step_update(num_updates = epoch) after every optimizer step — and read
  // from the optimizer before each step, under PyTorch 1.13.
  const paper = { tInitial: 50, warmupT: 5, warmupLrInit: 5e-5, lrMax: 1e-4, lrMin: 1e-5 };

  it('timmCosineLr: warm-up from 5e-5, cosine over t_initial epochs counted from 0, then flat at the minimum', () => {
    const reference: [number, number][] = [
      [0, 5e-5],
      [1, 6e-5],
      [4, 9e-5],
      [5, 9.779754323328192e-5],
      [6, 9.683994186497131e-5],
      [10, 9.140576474687264e-5],
      [25, 5.5e-5],
      [49, 1.0088797220727781e-5],
      [50, 1e-5],
      [51, 1e-5],
      [99, 1e-5],
    ];
    for (const [t, lr] of reference) expect(timmCosineLr(t, paper), `epoch ${t}`).to.be.closeTo(lr, lr * 1e-12);
  });

  it('authorsEpochCosineLr: every step of 12 epochs × 2 batches as timm gives them (the first step of an epoch keeps the epoch before’s rate)', () => {
    const timm = [
      5e-5, 5e-5, 5e-5, 7.500000000000001e-5, 7.500000000000001e-5, 7.75e-5, 7.75e-5, 5.5e-5, 5.5e-5, 3.250000000000001e-5, 3.250000000000001e-5,
      1.602885682970026e-5, 1.602885682970026e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5,
    ];
    const s = { tInitial: 6, warmupT: 2, warmupLrInit: 5e-5, lrMax: 1e-4, lrMin: 1e-5 };
    const ours = timm.map((_, k) => authorsEpochCosineLr(Math.floor(k / 2), k % 2, s));
    ours.forEach((lr, k) => expect(lr, `step ${k}`).to.be.closeTo(timm[k]!, timm[k]! * 1e-12));
  });
});
