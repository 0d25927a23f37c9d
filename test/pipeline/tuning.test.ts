import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Rng } from '../../src/core/rng.ts';
import type { Trial, Tuner } from '../../src/contracts/tuner.ts';
import * as tf from '@tensorflow/tfjs';
import type { StagePlan } from '../../src/contracts/stages.ts';
import { runCell } from '../../src/pipeline/cell.ts';
import { RunScope } from '../../src/pipeline/scope.ts';
import { checkSearchPaths, runTuning, validationSplit, withSettings } from '../../src/pipeline/tuning.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { fixtures, projectRoot, tempDir, writeFiles } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');

/** A tuner that scores a fixed list of settings in order (enough to test the pipeline side). */
function listTuner(values: number[]): Tuner {
  const search = [{ path: 'pipeline.supervised.lr', min: 0, max: 1, log: false }];
  return {
    name: 'list',
    search,
    validationFraction: 0.25,
    trialMaxSteps: null,
    async tune(score, _rng, onTrial) {
      const trials: Trial[] = [];
      for (const [index, v] of values.entries()) {
        const params = { 'pipeline.supervised.lr': v };
        const t = { index, iteration: 0, agent: index, params, score: await score(params) };
        trials.push(t);
        onTrial?.(t);
      }
      const best = trials.reduce((a, b) => (b.score > a.score ? b : a));
      return { best: best.params, bestScore: best.score, trials };
    },
  };
}

describe('tuning in the pipeline', function () {
  this.timeout(300_000);

  it('carves a stratified validation share from the labeled images only', () => {
    const labels = Int32Array.from({ length: 100 }, (_, i) => i % 4);
    const labeled = Int32Array.from({ length: 40 }, (_, i) => i * 2); // classes 0 and 2 only
    const { train, validation } = validationSplit(labeled, labels, 4, 0.25, new Rng(3));
    expect(validation).to.have.length(10);
    expect(train).to.have.length(30);
    const all = new Set([...train, ...validation]);
    expect(all.size).to.equal(40);
    for (const i of all) expect([...labeled]).to.include(i);
    expect(validation.filter((i) => labels[i] === 0)).to.have.length(5);
    expect(() => validationSplit(Int32Array.from([0]), labels, 4, 0.25, new Rng(3))).to.throw(/cannot be split/);
  });

  it('replaces settings in a copy of the config and refuses paths that are not numeric settings', () => {
    const config = { pipeline: { supervised: { lr: 1, mixing: { use: 'none' } } } };
    const changed = withSettings(config, { 'pipeline.supervised.lr': 0.5 });
    expect((changed.pipeline as any).supervised.lr).to.equal(0.5);
    expect(config.pipeline.supervised.lr).to.equal(1);
    const bad = { ...listTuner([]), search: [{ path: 'pipeline.supervised.mixing', min: 0, max: 1, log: false }] };
    expect(() => checkSearchPaths(config, bad)).to.throw(/'pipeline.supervised.mixing' is not a numeric setting/);
  });

  it('a search interrupted after k trials continues from the recorded scores', async () => {
    const memoFile = path.join(tempDir(), 'tuning.json');
    let calls = 0;
    const score = async (p: Record<string, number>) => {
      calls++;
      if (calls === 3) throw new Error('killed');
      return p['pipeline.supervised.lr']!;
    };
    const tuner = listTuner([0.1, 0.4, 0.2, 0.3]);
    await runTuning({ tuner, seed: 1, memoFile, score }).catch(() => {});
    expect(JSON.parse(fs.readFileSync(memoFile, 'utf8')).trials).to.have.length(2);
    calls = 10;
    const result = await runTuning({ tuner, seed: 1, memoFile, score });
    expect(calls).to.equal(12); // only trials 3 and 4 were scored again
    expect(result.best).to.deep.equal({ 'pipeline.supervised.lr': 0.4 });
  });

  it('ssfer run with tune: gwo trains the best setting and writes the search trace', () => {
    const out = tempDir();
    // The tiny-run fixture without its grid: one cell.
    const tiny = fs.readFileSync(path.join(fixtures, 'recipes', 'tiny-run.yaml'), 'utf8').replace(/^grid:[\s\S]*$/m, '');
    const recipe = path.join(writeFiles({ 'tiny-tune.yaml': tiny }), 'tiny-tune.yaml');
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'run',
        recipe,
        '--json',
        '--backend',
        'cpu',
        '--out',
        out,
        '--set',
        'pipeline.tune={use: gwo, wolves: 3, iterations: 1, trial_max_steps: 4}',
        '--set',
        'pipeline.supervised.warmup_epochs=0',
      ],
      { cwd: projectRoot, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).to.equal(0);
    const base = path.join(out, 'tiny-tune');
    const cell = path.join(base, fs.readdirSync(base)[0]!, 'cells', 'default', 'seed-0');
    const trace = JSON.parse(fs.readFileSync(path.join(cell, 'tuning.json'), 'utf8'));
    expect(trace.trials).to.have.length(6);
    expect(trace.bestScore).to.equal(Math.max(...trace.trials.map((t: Trial) => t.score)));
    expect(fs.readFileSync(path.join(cell, 'tuning.png')).subarray(1, 4).toString()).to.equal('PNG');
    const metrics = JSON.parse(fs.readFileSync(path.join(cell, 'metrics.json'), 'utf8'));
    expect(metrics.tuning.best).to.deep.equal(trace.best);
    // 42 labeled images (50 % of 84): a quarter of each class is held out to score trials.
    expect(metrics.tuning.validation_count + trace.train_count).to.equal(42);
    // The final training ran at the chosen peak learning rate (without warm-up, the first epoch's).
    const lrs = fs
      .readFileSync(path.join(cell, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).lr as number);
    expect(Math.max(...lrs)).to.be.closeTo(trace.best['pipeline.supervised.lr'], 1e-12);
  });

  it('a trial trains as many epochs as the final run: the few-labels rule counts the whole labeled set', async () => {
    // 42 labeled images (50 % of 84), a quarter of each class held out: trials train on fewer
    // than 40. With the rule at 40 labels the final run (42) trains 1 epoch; a trial counted on
    // its own images would train 3.
    await tf.setBackend('cpu');
    const tiny = fs.readFileSync(path.join(fixtures, 'recipes', 'tiny-run.yaml'), 'utf8').replace(/^grid:[\s\S]*$/m, '');
    const recipe = await resolveRecipe(path.join(writeFiles({ 'tiny-tune.yaml': tiny }), 'tiny-tune.yaml'), {
      sets: [
        'pipeline.tune={use: gwo, wolves: 3, iterations: 1}',
        'pipeline.supervised.epochs=1',
        'pipeline.supervised.few_labels_epochs=3',
        'pipeline.supervised.few_labels_threshold=40',
      ],
    });
    const plans = new Map<string, StagePlan[]>();
    const scope = new RunScope(recipe.registry);
    try {
      await runCell(scope, recipe, recipe.cells[0]!, {
        onStep: (stage, _l, plan) => void (plans.get(stage) ?? plans.set(stage, []).get(stage)!).push(plan),
        shouldStop: () => false,
        note: () => {},
      });
    } finally {
      scope.close();
    }
    expect(plans.get('supervised')!.map((p) => p.epochs)).to.satisfy((e: number[]) => e.length > 0 && e.every((v) => v === 1));
    expect(plans.get('tune')!.map((p) => p.epochs)).to.satisfy((e: number[]) => e.length > 0 && e.every((v) => v === 1));
    // Trials train on fewer than 40 images (batches of 8): at most 4 steps per epoch.
    expect(plans.get('tune')![0]!.stepsPerEpoch).to.be.at.most(4);
  });
});
