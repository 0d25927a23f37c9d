import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { runFirstCell } from '../cells.ts';
import { fixtures } from '../helpers.ts';

const probe = ((globalThis as { ssferStageProbe?: number[] }).ssferStageProbe ??= []);

/** The mean weight the second fine-tuning stage started from, after a first one that leaves weights 0.25 and an EMA of 0.5. */
async function startOfSecondStage(
  startsFrom: 'weights' | 'ema',
  useEma: boolean,
): Promise<{ start: number; metrics: { accuracy: number; accuracy_raw: number } }> {
  probe.length = 0;
  const { metrics } = await runFirstCell(path.join(fixtures, 'recipes', 'tiny-run.yaml'), {
    pluginFiles: [path.join(fixtures, 'plugins', 'stage-probes.ts')],
    sets: ['pipeline.supervised={use: probe-fill}', `pipeline.semi={use: probe-start, starts_from: ${startsFrom}}`, `evaluation.use_ema=${useEma}`],
  });
  expect(probe).to.have.length(1);
  return { start: probe[0]!, metrics };
}

describe('fine-tuning stages', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('start from the previous stage’s EMA when they declare it and the cell evaluates EMAs', async () => {
    const before = tf.memory().numTensors;
    const { start, metrics } = await startOfSecondStage('ema', true);
    expect(start).to.be.closeTo(0.5, 1e-6);
    // The EMA became the weights, so the raw and the evaluated weights are one model.
    expect(metrics.accuracy).to.equal(metrics.accuracy_raw);
    expect(tf.memory().numTensors, 'every model, EMA and memo released').to.equal(before);
  });

  it('start from the weights when the cell does not evaluate EMAs, or when they declare weights', async () => {
    expect((await startOfSecondStage('ema', false)).start).to.be.closeTo(0.25, 1e-6);
    expect((await startOfSecondStage('weights', true)).start).to.be.closeTo(0.25, 1e-6);
  });
});
