import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { quietHooks, runFirstCell } from '../cells.ts';
import { meanWeight } from '../fixtures/plugins/stage-probes.ts';
import { fixtures } from '../helpers.ts';

const probe = ((globalThis as { ssferStageProbe?: number[] }).ssferStageProbe ??= []);

/**
 * The mean weight the second fine-tuning stage started from, after a first one that leaves weights
 * 0.25 and an EMA of 0.5, and the mean weight of what the cell evaluated and kept. With `trains`
 * the second stage then sets every weight to that value, as training would change them.
 */
async function startOfSecondStage(
  startsFrom: 'weights' | 'ema',
  useEma: boolean,
  trains: number | null = null,
): Promise<{ start: number; evaluated: number; metrics: { accuracy: number; accuracy_raw: number } }> {
  probe.length = 0;
  let evaluated = Number.NaN;
  const { metrics } = await runFirstCell(
    path.join(fixtures, 'recipes', 'tiny-run.yaml'),
    {
      pluginFiles: [path.join(fixtures, 'plugins', 'stage-probes.ts')],
      sets: [
        // The fixture's rows choose the mixing, which these stages do not have: one row.
        'grid.rows=[]',
        'pipeline.supervised={use: probe-fill}',
        `pipeline.semi={use: probe-start, starts_from: ${startsFrom}, trains: ${trains ?? 'null'}}`,
        `evaluation.use_ema=${useEma}`,
      ],
    },
    { ...quietHooks, keepModel: async (model) => void (evaluated = meanWeight(model)) },
  );
  expect(probe).to.have.length(1);
  return { start: probe[0]!, evaluated, metrics };
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

  it('evaluate what the last stage that trained left, never an EMA from before it', async () => {
    // A stage that trains from the weights: the supervised EMA no longer describes them.
    const trained = await startOfSecondStage('weights', true, 0.75);
    expect(trained.evaluated).to.be.closeTo(0.75, 1e-6);
    expect(trained.metrics.accuracy).to.equal(trained.metrics.accuracy_raw);
    // A stage that trains nothing (ssl: none) leaves the supervised EMA to be evaluated.
    expect((await startOfSecondStage('weights', true)).evaluated).to.be.closeTo(0.5, 1e-6);
    expect((await startOfSecondStage('weights', false)).evaluated).to.be.closeTo(0.25, 1e-6);
  });
});
