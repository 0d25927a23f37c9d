import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { warmupCosineLr } from '../../../src/train/schedule.ts';
import { runFirstCell } from '../../cells.ts';
import { fixtures } from '../../helpers.ts';

/** The supervised stage's per-step rates in the tiny fixture's first cell (21 labels, batches of 8: 2 steps per epoch). */
async function rates(sets: string[]): Promise<number[]> {
  const { log } = await runFirstCell(path.join(fixtures, 'recipes', 'tiny-run.yaml'), {
    sets: ['pipeline.supervised.epochs=6', 'pipeline.supervised.few_labels_epochs=6', 'pipeline.supervised.warmup_epochs=2', ...sets],
  });
  const steps = log.filter((l) => l.stage === 'supervised');
  expect(steps.map((l) => l.epoch)).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
  return steps.map((l) => l.metrics.lr!);
}

describe('supervised stage: the learning-rate schedule', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('by default is the authors’ timm cosine, per epoch over half the epochs, as timm gives it', async () => {
    // timm's CosineLRScheduler(t_initial 3, lr_min 1e-5, warmup_lr_init 5e-5, warmup_t 2,
    // t_in_epochs False) with step_update(num_updates = epoch) after each step (PyTorch 1.13).
    const timm = [5e-5, 5e-5, 5e-5, 0.000525, 0.000525, 0.00025750000000000013, 0.00025750000000000013, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5];
    (await rates([])).forEach((lr, k) => expect(lr, `step ${k}`).to.be.closeTo(timm[k]!, timm[k]! * 1e-12));
  });

  it('schedule: cosine-step warms up per step and decays over every step', async () => {
    const expected = Array.from({ length: 12 }, (_, k) => warmupCosineLr(k, { totalSteps: 12, warmupSteps: 4, warmupInitLr: 5e-5, maxLr: 1e-3, minLr: 1e-5 }));
    (await rates(['pipeline.supervised.schedule=cosine-step'])).forEach((lr, k) => expect(lr, `step ${k}`).to.be.closeTo(expected[k]!, 1e-12));
  });
});
