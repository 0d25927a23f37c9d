import { expect } from 'chai';
import { Rng } from '../../../src/core/rng.ts';
import type { LabelSplit } from '../../../src/contracts/training.ts';
import { countsByClass, imbalanced, sampler, sorted } from './helpers.ts';

const sizes = [103, 57, 41, 12, 7, 230, 3];
const numClasses = sizes.length;
const labels = imbalanced(sizes);
const n = labels.length;

async function fold(fold: number, options: Record<string, unknown> = {}, seed = 2024, info?: { folds?: Int32Array }, rngSeed = 1): Promise<LabelSplit> {
  const s = await sampler({ use: 'kfold', fold, ...options }, seed);
  return s.split(labels, numClasses, new Rng(rngSeed), info);
}

async function allFolds(options: Record<string, unknown> = {}, seed = 2024): Promise<LabelSplit[]> {
  return Promise.all([0, 1, 2, 3, 4].map((f) => fold(f, options, seed, undefined, 100 + f)));
}

describe('sampler plugin: kfold', () => {
  it('held-out folds are disjoint and together cover every training image once', async () => {
    const splits = await allFolds();
    expect(sorted(splits.flatMap((s) => Array.from(s.heldOut!)))).to.deep.equal(Array.from({ length: n }, (_, i) => i));
  });

  it('is stratified: a class has the same count in every fold, give or take one, and so do the fold sizes', async () => {
    const splits = await allFolds();
    const perFold = splits.map((s) => countsByClass(labels, s.heldOut!, numClasses));
    for (let c = 0; c < numClasses; c++) {
      const counts = perFold.map((f) => f[c]!);
      expect(Math.max(...counts) - Math.min(...counts), `class ${c}: ${counts.join(' ')}`).to.be.at.most(1);
      expect(counts.reduce((a, b) => a + b, 0)).to.equal(sizes[c]);
    }
    const fold = splits.map((s) => s.heldOut!.length);
    expect(Math.max(...fold) - Math.min(...fold)).to.be.at.most(1);
  });

  it('with fraction 1 trains on every image outside the held-out fold, all labeled', async () => {
    const s = await fold(2);
    expect(s.unlabeled).to.have.length(0);
    expect(sorted([...s.labeled, ...s.heldOut!])).to.deep.equal(Array.from({ length: n }, (_, i) => i));
  });

  it('applies the label fraction per class inside the training folds; the rest of them is unlabeled', async () => {
    const s = await fold(1, { fraction: 0.1 });
    const held = new Set(s.heldOut);
    const training = Array.from({ length: n }, (_, i) => i).filter((i) => !held.has(i));
    expect(sorted([...s.labeled, ...s.unlabeled])).to.deep.equal(training);
    expect(Array.from(s.labeled).some((i) => held.has(i))).to.equal(false);
    const trainingCounts = countsByClass(labels, training, numClasses);
    const labeledCounts = countsByClass(labels, s.labeled, numClasses);
    // round(0.1·n_c), at least one per class
    expect(labeledCounts).to.deep.equal(trainingCounts.map((c) => Math.max(1, Math.round(0.1 * c))));
  });

  it('is reproducible: the same seed gives the same partition and labeled set; another seed another partition', async () => {
    const a = await fold(3, { fraction: 0.25 });
    const b = await fold(3, { fraction: 0.25 });
    expect(Array.from(a.heldOut!)).to.deep.equal(Array.from(b.heldOut!));
    expect(Array.from(a.labeled)).to.deep.equal(Array.from(b.labeled));
    const other = await fold(3, { fraction: 0.25 }, 99);
    expect(Array.from(other.heldOut!)).to.not.deep.equal(Array.from(a.heldOut!));
  });

  it('keeps one partition for every cell of a table: the fold does not move with the fraction or the caller’s stream', async () => {
    const a = await fold(4, { fraction: 0.05 }, 2024, undefined, 1);
    const b = await fold(4, { fraction: 0.25 }, 2024, undefined, 2);
    expect(Array.from(a.heldOut!)).to.deep.equal(Array.from(b.heldOut!));
  });

  it("honours the dataset's official folds", async () => {
    // Blocks of consecutive images, as subject-exclusive folds are: not stratified, unequal sizes.
    const folds = Int32Array.from({ length: n }, (_, i) => Math.min(4, Math.floor(i / 90)));
    const s = await fold(2, { fraction: 0.5 }, 2024, { folds });
    expect(Array.from(s.heldOut!)).to.deep.equal(Array.from({ length: 90 }, (_, i) => 180 + i));
    expect(Array.from(s.labeled).every((i) => folds[i] !== 2)).to.equal(true);
    const ignored = await fold(2, { use_dataset_folds: false }, 2024, { folds });
    expect(Array.from(ignored.heldOut!)).to.not.deep.equal(Array.from(s.heldOut!));
  });

  it('refuses official folds that do not match K, and a fold outside 0..K−1', async () => {
    const folds = Int32Array.from({ length: n }, (_, i) => i % 3);
    let message = '';
    try {
      await fold(0, {}, 2024, { folds });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.match(/defines 3 folds but the sampler asks for folds: 5; set folds: 3/);
    let created = '';
    try {
      await fold(5);
    } catch (err) {
      created = (err as Error).message;
    }
    expect(created).to.match(/fold 5 is outside 0\.\.4/);
  });

  it('names its budget', async () => {
    expect((await sampler({ use: 'kfold', fold: 1, fraction: 0.1 })).budget).to.equal('fold 2/5, 10%');
  });
});

describe('sampler plugins: fraction, per-class, count', () => {
  it('keep their per-class quotas', async () => {
    const rng = () => new Rng(1);
    const frac = (await sampler({ use: 'fraction', fraction: 0.1 })).split(labels, numClasses, rng());
    expect(countsByClass(labels, frac.labeled, numClasses)).to.deep.equal(sizes.map((c) => Math.max(1, Math.round(0.1 * c))));
    const per = (await sampler({ use: 'per-class', per_class: 10 })).split(labels, numClasses, rng());
    expect(countsByClass(labels, per.labeled, numClasses)).to.deep.equal(sizes.map((c) => Math.min(c, 10)));
    const count = (await sampler({ use: 'count', count: 100 })).split(labels, numClasses, rng());
    expect(countsByClass(labels, count.labeled, numClasses)).to.deep.equal(sizes.map((c) => Math.max(1, Math.round((100 * c) / n))));
    for (const s of [frac, per, count]) expect(s.labeled.length + s.unlabeled.length).to.equal(n);
  });
});
