import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { CheckpointStore, Metrics, SavedTraining, StepLog } from '../../src/contracts/stages.ts';
import { Rng } from '../../src/core/rng.ts';
import { CHECKPOINT_SECONDS_VARIABLE, checkpointIntervalMs, meanOf, planOf, TrainLoop, type Budget, type TrainProgram } from '../../src/train/loop.ts';

/** A checkpoint kept in memory: cloned on save (the loop's tensors keep changing), cloned again on load. */
function memoryStore(): CheckpointStore & { saves: number[] } {
  let kept: SavedTraining | null = null;
  const saves: number[] = [];
  const copy = (s: SavedTraining): SavedTraining => ({
    ...s,
    meta: structuredClone(s.meta),
    tensors: Object.fromEntries(Object.entries(s.tensors).map(([k, t]) => [k, tf.clone(t)])),
  });
  return {
    saves,
    async load() {
      return kept && copy(kept);
    },
    async save(state) {
      if (kept) tf.dispose(Object.values(kept.tensors));
      kept = copy(state);
      saves.push(state.epoch);
    },
  };
}

/**
 * One weight pulled towards a target that a random stream moves: w ← w − lr·(w − t), t ~ U(0, 10).
 * The loss is (w − t)² before the step, so every logged figure depends on the weight, the rate
 * and the stream's position.
 */
function program(budget: Budget, w: tf.Variable, rng: Rng): TrainProgram<number> {
  return {
    budget,
    schedule: (_step, epoch) => 1 / (epoch + 1),
    parts: { weights: new Map([['w', w]]), rng },
    batches: () => [0, 1, 2],
    step(batch, at) {
      const target = rng.uniform(0, 10);
      const before = w.dataSync()[0]!;
      w.assign(tf.scalar(before - at.lr * (before - target)));
      return { loss: (before - target) ** 2, batch };
    },
  };
}

describe('TrainLoop', () => {
  const budget: Budget = { epochs: 3, stepsPerEpoch: 3, minSteps: null, maxSteps: null, warmupEpochs: 1, warmupLr: 0.1 };

  it('plans the budget: epochs × steps, cut by max_steps, warm-up rounded to steps', () => {
    expect(planOf(budget)).to.deep.equal({ epochs: 3, stepsPerEpoch: 3, totalSteps: 9, warmupSteps: 3 });
    expect(planOf({ ...budget, maxSteps: 4, warmupEpochs: 0.5 })).to.deep.equal({ epochs: 3, stepsPerEpoch: 3, totalSteps: 4, warmupSteps: 2 });
    expect(planOf({ ...budget, maxSteps: 2 }).warmupSteps).to.equal(2);
  });

  it('plans min_steps: epochs added (the last one cut) where the epochs give fewer steps, none where they give more, then max_steps caps', async () => {
    expect(planOf({ ...budget, minSteps: 20 })).to.deep.equal({ epochs: 7, stepsPerEpoch: 3, totalSteps: 20, warmupSteps: 3 });
    expect(planOf({ ...budget, minSteps: 5 })).to.deep.equal({ epochs: 3, stepsPerEpoch: 3, totalSteps: 9, warmupSteps: 3 });
    expect(planOf({ ...budget, minSteps: 20, maxSteps: 11 })).to.deep.equal({ epochs: 4, stepsPerEpoch: 3, totalSteps: 11, warmupSteps: 3 });
    // The loop takes exactly those steps: 7 with 1 epoch of 3 asked for, in epochs of 3, 3 and 1.
    const w = tf.variable(tf.scalar(0));
    const logs: StepLog[] = [];
    const result = await new TrainLoop(program({ ...budget, epochs: 1, minSteps: 7 }, w, new Rng(3)), { onStep: (l) => logs.push(l) }).run();
    w.dispose();
    expect(result).to.include({ steps: 7, epochs: 3 });
    expect(logs.map((l) => l.epoch)).to.deep.equal([0, 0, 0, 1, 1, 1, 2]);
  });

  it('warms up linearly to the schedule, logs loss and lr first, and summarises each epoch by the mean', async () => {
    const w = tf.variable(tf.scalar(0));
    const logs: StepLog[] = [];
    const epochs: [number, Metrics][] = [];
    const result = await new TrainLoop(program(budget, w, new Rng(3)), { onStep: (l) => logs.push(l), onEpoch: (e, m) => void epochs.push([e, m]) }).run();
    // Warm-up over 3 steps from 0.1 towards the epoch-0 rate 1: 0.1, 0.4, 0.7; then 1/(epoch + 1).
    const lrs = logs.map((l) => l.metrics.lr!);
    [0.1, 0.4, 0.7, 0.5, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3].forEach((want, i) => expect(lrs[i]).to.be.closeTo(want, 1e-15));
    expect(logs.map((l) => [l.step, l.epoch])).to.deep.equal([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 1],
      [5, 1],
      [6, 1],
      [7, 2],
      [8, 2],
      [9, 2],
    ]);
    expect(Object.keys(logs[0]!.metrics)).to.deep.equal(['loss', 'lr', 'batch']);
    expect(epochs.map(([e]) => e)).to.deep.equal([0, 1, 2]);
    const first = logs.slice(0, 3).map((l) => l.metrics.loss!);
    expect(epochs[0]![1].loss).to.be.closeTo((first[0]! + first[1]! + first[2]!) / 3, 1e-12);
    expect(epochs[0]![1].batch).to.equal(1);
    expect(result).to.deep.include({ steps: 9, epochs: 3, stopped: false });
    expect(result.last).to.deep.equal(epochs[2]![1]);
    expect(result.first).to.deep.equal(epochs[0]![1]);
    w.dispose();
  });

  it('stops before the next step when asked, saving nothing after the last finished epoch', async () => {
    const w = tf.variable(tf.scalar(0));
    const store = memoryStore();
    let steps = 0;
    const result = await new TrainLoop(program(budget, w, new Rng(3)), { onStep: () => steps++, shouldStop: () => steps === 5, checkpoint: store }).run();
    expect(result).to.deep.include({ steps: 5, epochs: 2, stopped: true });
    expect(store.saves).to.deep.equal([1]);
    w.dispose();
  });

  it('resumes from the last epoch checkpoint to exactly the steps of an uninterrupted run', async () => {
    const run = async (stopAt: number | null, store: CheckpointStore) => {
      const w = tf.variable(tf.scalar(0));
      const logs: StepLog[] = [];
      const result = await new TrainLoop(program(budget, w, new Rng(7)), {
        onStep: (l) => logs.push(l),
        shouldStop: () => logs.length === stopAt,
        checkpoint: store,
      }).run();
      const final = w.dataSync()[0]!;
      w.dispose();
      return { logs, result, final };
    };
    const whole = await run(null, memoryStore());
    const store = memoryStore();
    const cut = await run(7, store);
    expect(cut.result.stopped).to.equal(true);
    // A fresh weight and a fresh stream: everything the resumed steps see comes from the checkpoint.
    const resumed = await run(null, store);
    expect(resumed.logs.map((l) => l.step)).to.deep.equal([7, 8, 9]);
    expect(resumed.logs).to.deep.equal(whole.logs.slice(6));
    expect(resumed.final).to.equal(whole.final);
    expect(resumed.result).to.deep.include({ steps: 9, epochs: 3 });
    // The first epoch's summary survives the resume (stage health reads it).
    expect(resumed.result.first).to.deep.equal(whole.result.first);
    expect(resumed.result.last).to.deep.equal(whole.result.last);
  });

  it('saves an epoch only when the checkpoint interval has passed, and always the last one', async () => {
    const previous = process.env[CHECKPOINT_SECONDS_VARIABLE];
    const savesWith = async (seconds: string, b: Budget) => {
      process.env[CHECKPOINT_SECONDS_VARIABLE] = seconds;
      const w = tf.variable(tf.scalar(0));
      const store = memoryStore();
      await new TrainLoop(program(b, w, new Rng(3)), { checkpoint: store }).run();
      w.dispose();
      return store.saves;
    };
    try {
      expect(await savesWith('0', budget)).to.deep.equal([1, 2, 3]);
      expect(await savesWith('3600', budget)).to.deep.equal([3]);
      // A stage cut by max_steps in its second epoch: that epoch is its last and is saved.
      expect(await savesWith('3600', { ...budget, maxSteps: 5 })).to.deep.equal([2]);
      process.env[CHECKPOINT_SECONDS_VARIABLE] = 'soon';
      expect(() => checkpointIntervalMs()).to.throw('SSFER_CHECKPOINT_SECONDS=soon: expected a number of seconds ≥ 0');
      delete process.env[CHECKPOINT_SECONDS_VARIABLE];
      expect(checkpointIntervalMs()).to.equal(30_000);
    } finally {
      if (previous === undefined) delete process.env[CHECKPOINT_SECONDS_VARIABLE];
      else process.env[CHECKPOINT_SECONDS_VARIABLE] = previous;
    }
  });

  it('lets an epoch hook stop the stage with an error, before that epoch is saved', async () => {
    const w = tf.variable(tf.scalar(0));
    const store = memoryStore();
    const guard = (epoch: number) => {
      if (epoch === 1) throw new Error('guard: the loss stopped moving');
    };
    let err: unknown;
    try {
      await new TrainLoop(program(budget, w, new Rng(1)), { onEpoch: guard, checkpoint: store }).run();
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.equal('guard: the loss stopped moving');
    expect(store.saves).to.deep.equal([1]);
    w.dispose();
  });

  it('takes no step and restores nothing for an empty budget', async () => {
    const w = tf.variable(tf.scalar(0));
    let loads = 0;
    const store: CheckpointStore = {
      async load() {
        loads++;
        return null;
      },
      save: async () => {},
    };
    const result = await new TrainLoop(program({ ...budget, epochs: 0 }, w, new Rng(1)), { checkpoint: store }).run();
    expect(result).to.deep.include({ steps: 0, epochs: 0, stopped: false, first: {}, last: {} });
    expect(loads).to.equal(0);
    w.dispose();
  });

  it('averages each figure over the steps that report it', () => {
    expect(meanOf([{ loss: 1, kappa: 0.5 }, { loss: 2 }, { loss: 6, kappa: 0.25 }])).to.deep.equal({ loss: 3, kappa: 0.375 });
    expect(meanOf([])).to.deep.equal({});
  });
});
