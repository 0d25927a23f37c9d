import { expect } from 'chai';
import { Rng } from '../../../src/core/rng.ts';
import { flipLabels } from '../../../plugins/sampler/internal/flip.ts';
import { countsByClass, imbalanced, sampler } from './helpers.ts';

const sizes = [300, 120, 80, 400, 60, 200, 40];
const numClasses = sizes.length;
const labels = imbalanced(sizes);

async function noisy(ratio: number, inner: Record<string, unknown> = { use: 'fraction', fraction: 0.25 }, seed = 2024, rngSeed = 1) {
  const s = await sampler({ use: 'noise', ratio, sampler: inner as never }, seed);
  return s.split(labels, numClasses, new Rng(rngSeed));
}

function changed(a: Int32Array, b: Int32Array): number[] {
  return Array.from({ length: a.length }, (_, i) => i).filter((i) => a[i] !== b[i]);
}

describe('sampler plugin: noise', () => {
  for (const ratio of [0, 0.1, 0.2, 0.3]) {
    it(`ratio ${ratio}: exactly round(ratio·n) kept labels change, each to another class`, async () => {
      const s = await noisy(ratio);
      const flipped = changed(labels, s.labels!);
      expect(flipped).to.have.length(Math.round(ratio * s.labeled.length));
      const kept = new Set(s.labeled);
      expect(flipped.every((i) => kept.has(i))).to.equal(true);
      expect(flipped.every((i) => s.labels![i] !== labels[i] && s.labels![i]! >= 0 && s.labels![i]! < numClasses)).to.equal(true);
    });
  }

  it('keeps the inner sampler’s split: the same labeled images at every ratio, the unlabeled pool untouched', async () => {
    const clean = await noisy(0);
    const s = await noisy(0.3);
    expect(Array.from(s.labeled)).to.deep.equal(Array.from(clean.labeled));
    expect(Array.from(s.unlabeled)).to.deep.equal(Array.from(clean.unlabeled));
    expect(Array.from(clean.labels!)).to.deep.equal(Array.from(labels));
    // round(0.25·n_c) per class: the default inner sampler's rule
    expect(countsByClass(labels, s.labeled, numClasses)).to.deep.equal(sizes.map((c) => Math.round(0.25 * c)));
  });

  it('nests the noise levels: a label flipped at 10 % is flipped to the same class at 20 % and 30 %', async () => {
    const [a, b, c] = await Promise.all([0.1, 0.2, 0.3].map((r) => noisy(r)));
    for (const [lo, hi] of [
      [a!, b!],
      [b!, c!],
    ] as const) {
      for (const i of changed(labels, lo.labels!)) expect(hi.labels![i]).to.equal(lo.labels![i]);
    }
  });

  it('is reproducible with the seed, whatever the caller’s stream; another seed flips other labels', async () => {
    const a = await noisy(0.2, undefined, 2024, 1);
    const b = await noisy(0.2, undefined, 2024, 2);
    expect(Array.from(a.labels!)).to.deep.equal(Array.from(b.labels!));
    const c = await noisy(0.2, undefined, 5);
    expect(changed(labels, c.labels!)).to.not.deep.equal(changed(labels, a.labels!));
  });

  it('draws the new class uniformly over the other classes', () => {
    // Every image of 3 000 in class 0 flipped: classes 1..5 should get 600 each.
    const y = new Int32Array(3000);
    const all = Int32Array.from(y, (_, i) => i);
    const out = flipLabels(y, all, 6, 1, new Rng(3), new Rng(4));
    expect(out.flipped).to.have.length(3000);
    const counts = countsByClass(out.labels, all, 6);
    expect(counts[0]).to.equal(0);
    // χ² with 4 degrees of freedom; 18.47 is its 0.999 quantile.
    const chi2 = counts.slice(1).reduce((acc, k) => acc + (k - 600) ** 2 / 600, 0);
    expect(chi2, counts.join(' ')).to.be.below(18.47);
  });

  it('wraps other samplers through its nested slot: per-class, and kfold with its held-out fold', async () => {
    const perClass = await noisy(0.1, { use: 'per-class', per_class: 20 });
    expect(perClass.labeled).to.have.length(20 * numClasses);
    expect(changed(labels, perClass.labels!)).to.have.length(14);
    const kfold = await noisy(0.2, { use: 'kfold', fold: 0, fraction: 0.5 });
    expect(kfold.heldOut!.length).to.be.greaterThan(0);
    const held = new Set(kfold.heldOut);
    expect(changed(labels, kfold.labels!).every((i) => !held.has(i))).to.equal(true);
  });

  it('names its budget after the inner one', async () => {
    expect((await sampler({ use: 'noise', ratio: 0.2, sampler: { use: 'fraction', fraction: 0.05 } })).budget).to.equal('5%, 20% noise');
  });
});
