import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import vitPlugin, { type VitOptions } from '../../../plugins/backbone/vit.ts';
import type { Backbone, NamedTensors } from '../../../src/contracts/backbone.ts';
import type { FerData, Split } from '../../../src/contracts/dataset.ts';
import type { CellState, StageHooks, StepLog } from '../../../src/contracts/stages.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { Rng } from '../../../src/core/rng.ts';

const pctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
const vitCtx: PluginContext = {
  ...pctx,
  resolve: () => {
    throw new Error('not used');
  },
};
const TINY: VitOptions = { preset: 'tiny', dim: 16, depth: 1, heads: 2, mlp_ratio: 2, image_size: 16, patch_size: 8, pool: 'mean' };
const vit = vitPlugin.create(TINY, vitCtx);

function split(images: Float32Array, labels: number[], size: number): Split {
  const n = labels.length;
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) boxes.set([0, 0, size, size], i * 4);
  return { size: n, images, labels: Int32Array.from(labels), boxes };
}

function data(train: Split, size: number, classes = 3): FerData {
  return { name: 'test', displayName: 'Test', classes: ['a', 'b', 'c'].slice(0, classes), imageSize: size, train, test: train };
}

/** n random 16-px images with random labels over 3 classes. */
function randomData(n: number, seed = 2): FerData {
  const rng = new Rng(seed);
  const images = Float32Array.from({ length: n * 16 * 16 * 3 }, () => rng.next());
  return data(
    split(
      images,
      Array.from({ length: n }, () => rng.int(3)),
      16,
    ),
    16,
  );
}

/**
 * A classifier with closed-form logits: 5 · (mean colour of the image) · W + b, W = identity and
 * b = 0 at the start, so the first step's pseudo-labels, confidences and losses can be computed by hand.
 */
class ColourModel implements Backbone {
  readonly kind = 'colour';
  readonly numClasses = 3;
  readonly featureDim = 3;
  readonly channels = 3;
  private readonly vars: Map<string, tf.Variable>;
  constructor(
    readonly imageSize: number,
    trainable = true,
  ) {
    this.vars = new Map([
      ['head.weight', tf.variable(tf.eye(3), trainable)],
      ['head.bias', tf.variable(tf.zeros([3]), trainable)],
    ]);
  }
  features(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.mean(images, [1, 2]), 5) as tf.Tensor2D);
  }
  classify(f: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(f, this.vars.get('head.weight')!), this.vars.get('head.bias')!) as tf.Tensor2D);
  }
  logits(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.classify(this.features(images)));
  }
  namedVariables() {
    return this.vars;
  }
  trainableVariables() {
    return [...this.vars.values()];
  }
  headVariables() {
    return [...this.vars.values()];
  }
  noWeightDecay(name: string) {
    return name.endsWith('bias');
  }
  state(): NamedTensors {
    return Object.fromEntries([...this.vars].map(([k, v]) => [k, tf.clone(v)]));
  }
  loadState(record: NamedTensors) {
    for (const [k, v] of this.vars) v.assign(record[k]!);
    return { loaded: [...this.vars.keys()], missing: [], unexpected: [] };
  }
  dispose() {
    for (const v of this.vars.values()) v.dispose();
  }
}

/** A teacher factory that keeps the teacher's weights when the stage disposes it, for the test to read. */
function recordedTeacher(seed: number): { buildCopy: () => Backbone; state: () => NamedTensors } {
  let saved: NamedTensors | null = null;
  return {
    buildCopy: () => {
      const t = vit.build(3, seed, { trainable: false });
      const dispose = t.dispose.bind(t);
      t.dispose = () => {
        saved = t.state();
        dispose();
      };
      return t;
    },
    state: () => {
      if (!saved) throw new Error('the stage did not dispose its teacher');
      return saved;
    },
  };
}

function semiContext(o: {
  model: Backbone;
  data: FerData;
  labeled: number[];
  unlabeled: number[];
  buildCopy?: () => Backbone;
  steps?: StepLog[];
  epochs?: Record<string, number>[];
  onEpoch?: () => void;
}): CellState & { hooks: StageHooks } {
  return {
    model: o.model,
    buildCopy: o.buildCopy ?? (() => vit.build(3, 1, { trainable: false })),
    data: o.data,
    labeled: Int32Array.from(o.labeled),
    labels: o.data.train.labels,
    unlabeled: Int32Array.from(o.unlabeled),
    boxes: o.data.train.boxes,
    seed: 42,
    hooks: {
      onStep: (l) => o.steps?.push(l),
      onEpoch: (_e, m) => {
        o.epochs?.push(m);
        o.onEpoch?.();
      },
      shouldStop: () => false,
    },
  };
}

/** An ssl stage's arguments: the cell's state and the hooks. */
const stage = (ctx: CellState & { hooks: StageHooks }): [CellState, StageHooks] => [ctx, ctx.hooks];

const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
};

describe('semi-supervised stage (EMA teacher, FixMatch)', function () {
  let registry: PluginRegistry;
  before(async () => {
    await tf.setBackend('cpu');
    registry = await createRegistry();
  });
  const create = (slot: Record<string, unknown>) => registry.create('ssl', slot as never, pctx);

  describe('a crafted first step', () => {
    // 4 unlabeled images and 2 labeled ones of constant colours; no augmentation. The labeled
    // images come last, so labels read by position in the labeled list instead of by image would
    // be the unlabeled images' (0, 2) and change the loss.
    const colours = [
      [1, 0, 0], // logits (5, 0, 0): confident, class 0 (true 0)
      [0, 1, 0], // confident, class 1 (true 2)
      [0.3, 0.2, 0.1], // logits (1.5, 1, 0.5): p = 0.51, below τ (true 0)
      [0, 0, 0.8], // logits (0, 0, 4): confident, class 2 (true 2)
      [0.2, 0.6, 0.1], // labeled, class 1
      [0.5, 0.1, 0.4], // labeled, class 2
    ];
    const labels = [0, 2, 0, 2, 1, 2];
    const fer = () => {
      const images = new Float32Array(colours.length * 4 * 3);
      colours.forEach((c, i) => {
        for (let p = 0; p < 4; p++) images.set(c, (i * 4 + p) * 3);
      });
      return data(split(images, labels, 2), 2);
    };
    const options = { threshold: 0.9, unlabeled_weight: 3, unlabeled_ratio: 2, batch_size: 2, max_steps: 1, weak: { use: 'none' }, strong: { use: 'none' } };

    const expected = () => {
      const logits = colours.map((c) => c.map((v) => 5 * v));
      const ce = (z: number[], y: number) => -Math.log(softmax(z)[y]!);
      const ll = (ce(logits[4]!, 1) + ce(logits[5]!, 2)) / 2;
      let lu = 0;
      for (const i of [0, 1, 2, 3]) {
        const p = softmax(logits[i]!);
        const conf = Math.max(...p);
        if (conf > 0.9) lu += ce(logits[i]!, p.indexOf(conf));
      }
      return ll + 3 * (lu / 4);
    };

    for (const use of ['fixmatch', 'ema-teacher']) {
      it(`${use}: mask rate is the share above τ, the loss is L_l + μ·(1/N_U)·Σ mask·CE, pseudo-label accuracy against the hidden labels`, async () => {
        const steps: StepLog[] = [];
        const epochs: Record<string, number>[] = [];
        const model = new ColourModel(2);
        let copies = 0;
        const ctx = semiContext({
          model,
          data: fer(),
          labeled: [4, 5],
          unlabeled: [0, 1, 2, 3],
          steps,
          epochs,
          buildCopy: () => {
            copies++;
            return new ColourModel(2, false);
          },
        });
        const out = await create({ use, ...options }).run(ctx, ctx.hooks);
        expect(steps).to.have.length(1);
        expect(steps[0]!.metrics.mask_rate).to.equal(0.75);
        expect(steps[0]!.metrics.loss).to.be.closeTo(expected(), 1e-5);
        expect(epochs[0]!.pseudo_accuracy).to.equal(0.75);
        expect(epochs[0]!.pseudo_accuracy_confident).to.be.closeTo(2 / 3, 1e-12);
        // FixMatch takes pseudo-labels from the student: it never builds a teacher.
        expect(copies).to.equal(use === 'fixmatch' ? 0 : 1);
        expect(out.summary).to.match(new RegExp(`^${use}: 1 epochs, 1 steps`));
        model.dispose();
      });
    }
  });

  describe('the EMA teacher', () => {
    it('after one step with m = 0.5 holds ½·(initial weights) + ½·(student after the step)', async () => {
      const fer = randomData(12);
      const model = vit.build(3, 1);
      const initial = model.state();
      const teacher = recordedTeacher(77); // different init: copy() must overwrite it
      const ctx = semiContext({ model, data: fer, labeled: [0, 1, 2, 3], unlabeled: [4, 5, 6, 7, 8, 9, 10, 11], buildCopy: teacher.buildCopy });
      await create({ use: 'ema-teacher', momentum: 0.5, batch_size: 4, max_steps: 1, evaluate: 'student', lr: 1e-2 }).run(ctx, ctx.hooks);
      const teacherState = teacher.state();
      const student = model.state();
      let moved = 0;
      for (const name of Object.keys(initial)) {
        const want = tf.tidy(() => Array.from(tf.add(tf.mul(initial[name]!, 0.5), tf.mul(student[name]!, 0.5)).dataSync()));
        const got = Array.from(teacherState[name]!.dataSync());
        got.forEach((v, i) => expect(v).to.be.closeTo(want[i]!, 1e-6));
        moved += tf.tidy(() => tf.max(tf.abs(tf.sub(initial[name]!, student[name]!))).dataSync()[0]!) > 0 ? 1 : 0;
      }
      expect(moved).to.be.greaterThan(0);
      tf.dispose([...Object.values(initial), ...Object.values(student), ...Object.values(teacherState)]);
      model.dispose();
    });

    it('with m = 0 trains exactly as FixMatch (the teacher is the student of the step before)', async () => {
      const fer = randomData(12);
      // Threshold 0.3: with 3 classes some pseudo-labels pass, so the teacher matters.
      const options = { batch_size: 4, max_steps: 4, lr: 1e-2, threshold: 0.3 };
      const trained = async (slot: Record<string, unknown>) => {
        const model = vit.build(3, 1);
        const steps: StepLog[] = [];
        await create({ ...options, ...slot }).run(
          ...stage(semiContext({ model, data: fer, labeled: [0, 1, 2, 3], unlabeled: [4, 5, 6, 7, 8, 9, 10, 11], steps })),
        );
        const state = model.state();
        const weights = Object.fromEntries(Object.entries(state).map(([n, t]) => [n, Array.from(t.dataSync())]));
        tf.dispose(Object.values(state));
        model.dispose();
        return { weights, steps };
      };
      const fixmatch = await trained({ use: 'fixmatch' });
      const ema = await trained({ use: 'ema-teacher', momentum: 0, evaluate: 'student' });
      expect(fixmatch.steps.some((s) => s.metrics.mask_rate! > 0)).to.equal(true);
      expect(ema.steps).to.deep.equal(fixmatch.steps);
      expect(ema.weights).to.deep.equal(fixmatch.weights);
      // A real momentum gives another teacher, and another result.
      const slow = await trained({ use: 'ema-teacher', momentum: 0.9, evaluate: 'student' });
      expect(slow.steps.map((s) => s.metrics.loss)).to.not.deep.equal(fixmatch.steps.map((s) => s.metrics.loss));
    });

    it('evaluate: teacher leaves the teacher’s weights in the model', async () => {
      const fer = randomData(12);
      const model = vit.build(3, 1);
      const teacher = recordedTeacher(1);
      const ctx = semiContext({ model, data: fer, labeled: [0, 1, 2, 3], unlabeled: [4, 5, 6, 7, 8, 9, 10, 11], buildCopy: teacher.buildCopy });
      const out = await create({ use: 'ema-teacher', momentum: 0.9, batch_size: 4, max_steps: 2, lr: 1e-2 }).run(ctx, ctx.hooks);
      const teacherState = teacher.state();
      expect(out.summary).to.match(/evaluating the teacher/);
      const now = model.state();
      for (const name of Object.keys(now)) expect(Array.from(now[name]!.dataSync())).to.deep.equal(Array.from(teacherState[name]!.dataSync()));
      tf.dispose([...Object.values(now), ...Object.values(teacherState)]);
      model.dispose();
    });
  });

  describe('bookkeeping', () => {
    it('keeps the tensor count flat across epochs and frees the teacher', async () => {
      const fer = randomData(12);
      const model = vit.build(3, 1);
      const counts: number[] = [];
      const before = tf.memory().numTensors;
      const epochs: Record<string, number>[] = [];
      const ctx = semiContext({
        model,
        data: fer,
        labeled: [0, 1, 2, 3],
        unlabeled: [4, 5, 6, 7, 8, 9, 10, 11],
        epochs,
        onEpoch: () => counts.push(tf.memory().numTensors),
      });
      await create({ use: 'ema-teacher', batch_size: 4, epochs: 3 }).run(ctx, ctx.hooks);
      expect(counts).to.have.length(3);
      expect(new Set(counts).size).to.equal(1);
      expect(tf.memory().numTensors).to.equal(before);
      for (const e of epochs) {
        expect(e.mask_rate).to.be.within(0, 1);
        expect(e.pseudo_accuracy).to.be.within(0, 1);
      }
      model.dispose();
    });

    it('an epoch is one pass over the unlabeled pool (the labeled pool cycles); step decay at the milestones', async () => {
      const fer = randomData(14);
      const model = vit.build(3, 1);
      const steps: StepLog[] = [];
      const ctx = semiContext({ model, data: fer, labeled: [0, 1], unlabeled: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], steps });
      await create({
        use: 'fixmatch',
        batch_size: 2,
        unlabeled_ratio: 2,
        epochs: 3,
        milestones: [1, 2],
        gamma: 0.5,
        lr: 1e-3,
        weak: { use: 'none' },
        strong: { use: 'none' },
      }).run(ctx, ctx.hooks);
      // 12 unlabeled images in batches of 4: 3 steps per epoch.
      expect(steps.map((s) => s.epoch)).to.deep.equal([0, 0, 0, 1, 1, 1, 2, 2, 2]);
      expect(steps.map((s) => s.metrics.lr)).to.deep.equal([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4]);
      model.dispose();
    });

    it('by default trains at a constant rate and starts from the supervised stage’s weights, as the authors’ code', async () => {
      // The authors build MultiStepLR([20, 40, 60]) and never call its step(): the rate stays at
      // its initial value for every epoch. Milestones given explicitly still decay it (test above).
      const fer = randomData(14);
      const model = vit.build(3, 1);
      const steps: StepLog[] = [];
      const ctx = semiContext({ model, data: fer, labeled: [0, 1], unlabeled: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], steps });
      const plugin = create({ use: 'ema-teacher', batch_size: 2, unlabeled_ratio: 2, epochs: 3, weak: { use: 'none' }, strong: { use: 'none' } });
      expect(plugin.startsFrom).to.equal('weights');
      expect(create({ use: 'fixmatch' }).startsFrom).to.equal('weights');
      expect(create({ use: 'ema-teacher', starts_from: 'ema' }).startsFrom).to.equal('ema');
      await plugin.run(ctx, ctx.hooks);
      expect(steps.map((s) => s.epoch)).to.deep.equal([0, 0, 0, 1, 1, 1, 2, 2, 2]);
      expect(steps.map((s) => s.metrics.lr)).to.deep.equal(Array(9).fill(1.5e-4));
      model.dispose();
    });

    it('is deterministic for a seed (strong augmentation included)', async () => {
      const run = async () => {
        const model = vit.build(3, 1);
        const steps: StepLog[] = [];
        const ctx = semiContext({ model, data: randomData(12), labeled: [0, 1, 2, 3], unlabeled: [4, 5, 6, 7, 8, 9, 10, 11], steps });
        await create({ use: 'ema-teacher', batch_size: 4, max_steps: 4, lr: 1e-3, threshold: 0.3 }).run(ctx, ctx.hooks);
        model.dispose();
        return steps.map((s) => [s.metrics.loss, s.metrics.mask_rate]);
      };
      const a = await run();
      expect(a).to.have.length(4);
      expect(await run()).to.deep.equal(a);
    });

    it('does nothing without unlabeled images, and says so', async () => {
      const model = vit.build(3, 1);
      const before = model.state();
      const out = await create({ use: 'ema-teacher' }).run(...stage(semiContext({ model, data: randomData(4), labeled: [0, 1, 2, 3], unlabeled: [] })));
      expect(out.summary).to.match(/no unlabeled images/);
      const after = model.state();
      for (const k of Object.keys(before)) expect(Array.from(after[k]!.dataSync())).to.deep.equal(Array.from(before[k]!.dataSync()));
      tf.dispose([...Object.values(before), ...Object.values(after)]);
      model.dispose();
    });
  });
});
