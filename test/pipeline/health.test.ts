import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { runCell, stageLossNote, type CellMetrics } from '../../src/pipeline/cell.ts';
import type { Evaluation } from '../../src/pipeline/evaluate.ts';
import { tableNotes } from '../../src/pipeline/outputs.ts';
import { RunScope } from '../../src/pipeline/scope.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { lossHealth } from '../../src/train/health.ts';
import { runFirstCell, quietHooks as hooks } from '../cells.ts';
import { fixtures, writeFiles } from '../helpers.ts';

/** The first cell of the every-stage fixture (MAE → supervised FaceMix → EMA teacher), in process. */
async function cellOf(sets: string[]): Promise<CellMetrics> {
  return (await runFirstCell(path.join(fixtures, 'recipes', 'tiny-stages.yaml'), { sets })).metrics;
}

describe('stage health', function () {
  this.timeout(300_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('a loss that fell by less than 10 % is named, with both values', () => {
    expect(lossHealth({ first: { loss: 2 }, last: { loss: 1 }, epochs: 3 })).to.deep.equal({ health: { loss_first: 2, loss_last: 1 }, notes: [] });
    expect(lossHealth({ first: { loss: 2 }, last: { loss: 1.9 }, epochs: 3 }).notes).to.deep.equal(['the loss fell only from 2.000 to 1.900 (by 5 %)']);
    expect(lossHealth({ first: { loss: 2 }, last: { loss: 2.5 }, epochs: 3 }).notes).to.deep.equal(['the loss rose from 2.000 to 2.500']);
    // One epoch: its first is its last, nothing to judge.
    expect(lossHealth({ first: { loss: 2 }, last: { loss: 2 }, epochs: 1 })).to.deep.equal({ health: { loss_first: 2, loss_last: 2 }, notes: [] });
    expect(lossHealth({ first: {}, last: {}, epochs: 0 })).to.deep.equal({ health: {}, notes: [] });
  });

  it('each stage reports whether it did its job; the semi stage’s gain is measured against the supervised stage alone', async () => {
    const m = await cellOf([]);
    expect(Object.keys(m.health).sort()).to.deep.equal(
      [
        'pretrain_loss_first',
        'pretrain_loss_last',
        'supervised_loss_first',
        'supervised_loss_last',
        'supervised_accuracy',
        'semi_mask_rate_first',
        'semi_mask_rate_last',
        'semi_pseudo_label_accuracy_last',
        'semi_accuracy',
        'semi_gain',
        'linear_probe_accuracy',
      ].sort(),
    );
    expect(m.health.semi_accuracy).to.equal(m.accuracy);
    expect(m.health.semi_gain).to.be.closeTo(m.health.semi_accuracy! - m.health.supervised_accuracy!, 1e-12);
    for (const k of ['semi_mask_rate_first', 'semi_mask_rate_last']) expect(m.health[k]).to.be.within(0, 1);
    // The same cell without the semi stage ends where the supervised stage left this one.
    const supervisedOnly = await cellOf(['pipeline.semi={use: none}']);
    expect(m.health.supervised_accuracy).to.equal(supervisedOnly.accuracy);
    // A stage that trained nothing has no accuracy or gain of its own (a 0 would count as a stage that changed nothing).
    expect(supervisedOnly.health.supervised_accuracy).to.equal(supervisedOnly.accuracy);
    expect(supervisedOnly.health).not.to.have.any.keys('semi_accuracy', 'semi_gain');
  });

  it('names a stage that lowered the accuracy beyond chance, by McNemar’s exact test on the same images', () => {
    // 100 test images: the stage before gets the first 80 right.
    const scored = (right: (i: number) => boolean): Evaluation => {
      const correct = Uint8Array.from({ length: 100 }, (_, i) => (right(i) ? 1 : 0));
      const hits = correct.reduce((a, b) => a + b, 0);
      return { accuracy: hits / 100, perClass: [], confusion: [], count: 100, correct };
    };
    const before = scored((i) => i < 80);
    // 20 images right before are wrong after, 5 the other way: 65 %; scipy.stats.binomtest(5, 25).pvalue = 0.00408.
    const worse = scored((i) => (i >= 20 && i < 80) || (i >= 80 && i < 85));
    expect(stageLossNote('supervised', before, worse)).to.equal(
      "lowered the test accuracy from 80.00 % (after supervised) to 65.00 %, beyond chance (McNemar's exact test p = 0.0041: 20 images right before it are wrong after it, 5 the other way)",
    );
    // 8 against 5 (binomtest(5, 13) = 0.58): within chance, no note; a gain: no note.
    expect(
      stageLossNote(
        'supervised',
        before,
        scored((i) => (i >= 8 && i < 80) || (i >= 80 && i < 85)),
      ),
    ).to.equal(null);
    expect(stageLossNote('supervised', worse, before)).to.equal(null);
    expect(() => stageLossNote('supervised', before, { ...worse, count: 99 })).to.throw(/do not pair/);
  });

  it('trains the linear probe once for the cells that share data and labels, and flags a cell that does not beat it', async () => {
    const recipe = await resolveRecipe(path.join(fixtures, 'recipes', 'tiny-stages.yaml'), {
      sets: ['pipeline.pretrain={use: none}', 'pipeline.semi={use: none}'],
    });
    const scope = new RunScope(recipe.registry);
    try {
      const a = (await runCell(scope, recipe, recipe.cells[0]!, hooks)).metrics;
      const b = (await runCell(scope, recipe, recipe.cells[1]!, hooks)).metrics;
      expect(scope.baselines.size, 'one probe for two cells with the same labels').to.equal(1);
      expect(scope.pictures.size, 'one dataset picture for two cells of one dataset').to.equal(1);
      expect(a.health.linear_probe_accuracy).to.equal(b.health.linear_probe_accuracy);
      expect(a.health.linear_probe_accuracy).to.be.within(0, 1);
      for (const m of [a, b]) {
        const flagged = tableNotes([{ id: m.id, runs: [m] }]).some((n) => n.startsWith(`${m.id}: accuracy `) && n.includes('is not above the linear probe'));
        expect(flagged, `${m.id}: ${m.accuracy} vs ${m.health.linear_probe_accuracy}`).to.equal(m.accuracy <= m.health.linear_probe_accuracy!);
      }
    } finally {
      scope.close();
    }
    const off = await cellOf(['pipeline.pretrain={use: none}', 'pipeline.semi={use: none}', 'evaluation.linear_probe.enabled=false']);
    expect(off.health).to.not.have.property('linear_probe_accuracy');
  });

  it('flags a cell of several seeds by its mean against the probe’s mean, not by one unlucky seed', () => {
    const seed = (accuracy: number, probe: number, k: number) =>
      ({
        id: 'c',
        seed: 7 + k,
        accuracy,
        dataset: { name: 'd', display: 'D', stand_in: null, notes: [] },
        stage_notes: [`semi: note of seed ${k}`],
        health: { linear_probe_accuracy: probe },
      }) as unknown as CellMetrics;
    // Seed 0 is below its probe, the mean (40 %) above the probe's mean (35 %): not flagged.
    const above = tableNotes([{ id: 'c', runs: [seed(0.3, 0.35, 0), seed(0.5, 0.35, 1)] }]);
    expect(above).to.deep.equal(['c seed 0: semi: note of seed 0', 'c seed 1: semi: note of seed 1']);
    // Mean 33 % against the probe's 35 %: flagged, with both means.
    const below = tableNotes([{ id: 'c', runs: [seed(0.3, 0.34, 0), seed(0.36, 0.36, 1)] }]);
    expect(below).to.include(`c: mean accuracy 33.00 % over 2 seeds is not above the linear probe's mean 35.00 % on the same labels`);
    // A seed that has not finished: no verdict yet.
    expect(tableNotes([{ id: 'c', runs: [seed(0.3, 0.34, 0), null] }]).some((n) => n.includes('linear probe'))).to.equal(false);
  });

  it('names a stage that did nothing in the cell’s notes and the table notes', async () => {
    // τ = 1 lets no pseudo-label pass; a learning rate of 1e-12 leaves the supervised loss where it began.
    const m = await cellOf([
      'pipeline.semi.threshold=1',
      'pipeline.supervised.lr=1e-12',
      'pipeline.supervised.warmup_lr=1e-12',
      'pipeline.supervised.min_lr=0',
      // Without mixing, the fixture's κ rows would be one configuration (refused): one row, no κ.
      'grid.rows=[]',
      'pipeline.supervised.mixing={use: none}',
    ]);
    expect(m.health.semi_mask_rate_last).to.equal(0);
    expect(m.stage_notes).to.include('semi: 0.0 % of unlabeled images passed τ = 1 in the last epoch');
    expect(
      m.stage_notes.some((n) => /^supervised: the loss (fell only|rose) from \d+\.\d{3} to \d+\.\d{3}/.test(n)),
      m.stage_notes.join('; '),
    ).to.equal(true);
    expect(tableNotes([{ id: m.id, runs: [m] }])).to.include(`${m.id}: semi: 0.0 % of unlabeled images passed τ = 1 in the last epoch`);
  });

  it('gives the cells of one seed the same random numbers where their settings agree: rows that differ in the semi stage only train the same supervised stage', async () => {
    const dir = writeFiles({
      'r.yaml': `extends: ${path.join(fixtures, 'recipes', 'tiny-stages.yaml')}\ngrid:\n  rows:\n    - name: semi_lr\n      path: pipeline.semi.lr\n      values: [5.0e-4, 5.0e-2]\n`,
    });
    const recipe = await resolveRecipe(path.join(dir, 'r.yaml'));
    expect(recipe.cells.map((c) => c.id)).to.deep.equal(['semi_lr=0.0005/labels=0.25', 'semi_lr=0.05/labels=0.25']);
    const scope = new RunScope(recipe.registry);
    try {
      const a = await runCell(scope, recipe, recipe.cells[0]!, hooks);
      const b = await runCell(scope, recipe, recipe.cells[1]!, hooks);
      const losses = (o: typeof a, stage: string) => o.log.filter((l) => l.stage === stage).map((l) => l.metrics.loss);
      expect(losses(a, 'supervised')).to.have.length.above(0);
      expect(losses(a, 'supervised')).to.deep.equal(losses(b, 'supervised'));
      expect(a.metrics.health.supervised_accuracy).to.equal(b.metrics.health.supervised_accuracy);
      // What the settings change still differs.
      expect(losses(a, 'semi')).to.not.deep.equal(losses(b, 'semi'));
    } finally {
      scope.close();
    }
  });
});
