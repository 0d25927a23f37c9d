import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { fixtures, projectRoot, tempDir, writeFiles } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'tiny-run.yaml');

function ssfer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runDir(out: string): string {
  const base = path.join(out, 'tiny-run');
  return path.join(base, fs.readdirSync(base).sort().pop()!);
}

describe('ssfer run (end to end on tiny synthetic faces)', function () {
  this.timeout(300_000);
  let out: string;
  let first: any;

  before(() => {
    out = tempDir();
    const r = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    first = JSON.parse(r.stdout);
  });

  it('prints only the table JSON on stdout, each cell with ours and the paper’s value', () => {
    expect(first.cells.map((c: any) => c.id)).to.deep.equal([
      'mixing=none/labels=0.25',
      'mixing=none/labels=0.5',
      'mixing=facemix/labels=0.25',
      'mixing=facemix/labels=0.5',
    ]);
    expect(first.cells.map((c: any) => c.paper)).to.deep.equal([10, 20, 30, null]);
    for (const c of first.cells) {
      expect(c.status).to.equal('done');
      expect(c.ours).to.be.a('number').within(0, 100);
    }
    expect(first.columnHeaders).to.deep.equal([['25%', '50%']]);
    expect(first.rows).to.deep.equal(['None', 'FaceMix']);
    expect(first.backend).to.equal('cpu');
  });

  it('says in the table which stages did not run', () => {
    expect(first.notes.join(' ')).to.not.match(/pretrain|semi/); // none/none: nothing skipped
    const md = fs.readFileSync(path.join(runDir(out), 'table.md'), 'utf8');
    expect(md).to.match(/\| Method \| 25% \| 50% \|/);
    expect(md).to.match(/\| FaceMix \| \d+\.\d\d \(30\.00\) \| \d+\.\d\d \(—\) \|/);
  });

  it('writes per-cell metrics, confusion matrix (JSON and PNG) and curves', () => {
    const cell = path.join(runDir(out), 'cells', 'mixing=facemix__labels=0.5', 'seed-0');
    const m = JSON.parse(fs.readFileSync(path.join(cell, 'metrics.json'), 'utf8'));
    expect(m.classes).to.have.length(7);
    // The synthetic faces' picture at the cell's image size: four people in the seven expressions.
    expect(fs.readFileSync(path.join(cell, 'data.png')).subarray(1, 4).toString()).to.equal('PNG');
    const total = m.confusion.flat().reduce((a: number, b: number) => a + b, 0);
    expect(total).to.equal(35);
    const diagonal = m.confusion.reduce((a: number, row: number[], i: number) => a + row[i]!, 0);
    expect(m.accuracy).to.be.closeTo(diagonal / 35, 1e-12);
    expect(m.labeled_count + m.unlabeled_count).to.equal(84);
    expect(m.labeled_count).to.equal(42);
    for (const png of ['confusion.png', 'curves.png']) {
      expect(fs.readFileSync(path.join(cell, png)).subarray(1, 4).toString()).to.equal('PNG');
    }
    expect(fs.existsSync(path.join(runDir(out), 'recipe.resolved.json'))).to.equal(true);
  });

  it('gives the same table for the same recipe, seed and backend', () => {
    const again = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', tempDir()]);
    expect(again.status).to.equal(0);
    expect(JSON.parse(again.stdout).cells.map((c: any) => c.ours)).to.deep.equal(first.cells.map((c: any) => c.ours));
  });

  it('--profile splits the run into its phases and kernels, and the numbers do not change', () => {
    const other = tempDir();
    const r = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', other, '--profile']);
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).cells.map((c: any) => c.ours)).to.deep.equal(first.cells.map((c: any) => c.ours));
    const dir = runDir(other);
    const text = fs.readFileSync(path.join(dir, 'profile.txt'), 'utf8');
    expect(r.stderr).to.contain('profile: ');
    for (const phase of [
      'finetune.run',
      'mixing.loss',
      'kappa.kappa',
      'optimizer',
      'checkpoint',
      'evaluation',
      'linear probe',
      'dataset.load',
      'outputs',
      'rest (no phase)',
    ]) {
      expect(text, phase).to.contain(phase);
    }
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'profile.json'), 'utf8'));
    const top = report.phases.reduce((s: number, p: any) => s + p.ms, 0);
    expect(top + report.restMs).to.be.closeTo(report.totalMs, 1e-6 * report.totalMs + 1e-3);
    // The supervised stage trains: its kernels run forward and backward.
    const stage = report.phases.find((p: any) => p.name === 'finetune.run');
    const all = (p: any): any[] => [p, ...p.children.flatMap(all)];
    expect(all(stage).reduce((s: number, p: any) => s + p.kernels.backward, 0)).to.be.above(0);
    expect(report.byKernel.length).to.be.above(0);
  });

  it('--resume skips finished cells and reruns only what is missing, to the same numbers', () => {
    const dir = runDir(out);
    const kept = path.join(dir, 'cells', 'mixing=none__labels=0.25', 'seed-0', 'metrics.json');
    const removed = path.join(dir, 'cells', 'mixing=facemix__labels=0.25', 'seed-0', 'metrics.json');
    const keptTime = fs.statSync(kept).mtimeMs;
    fs.rmSync(removed);
    const r = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', out, '--resume']);
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.statSync(kept).mtimeMs).to.equal(keptTime);
    expect(fs.existsSync(removed)).to.equal(true);
    expect(JSON.parse(r.stdout).cells.map((c: any) => c.ours)).to.deep.equal(first.cells.map((c: any) => c.ours));
  });

  it('refuses --resume when the settings changed', () => {
    const r = ssfer(['run', recipe, '--backend', 'cpu', '--out', out, '--resume', '--set', 'seed=12']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/that run used different settings/);
  });
});

describe('stage cache', function () {
  this.timeout(300_000);
  const mae = ['--set', 'pipeline.pretrain={use: mae, epochs: 1, warmup_epochs: 0, batch_size: 16, pool: {size: 32}}'];

  it('keeps a pre-training on disk, reuses it in the next run, and recomputes it when an input changes', () => {
    const out = tempDir();
    const first = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', out, ...mae]);
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stderr).to.not.match(/reused from the stage cache/);
    const entries = fs.readdirSync(path.join(out, '.cache', 'stages'));
    expect(entries.filter((e) => e.endsWith('.weights'))).to.have.length(1); // one pre-training for all 4 cells
    const again = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', out, ...mae]);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/pre-training reused from the stage cache/);
    expect(JSON.parse(again.stdout).cells.map((c: any) => c.ours)).to.deep.equal(JSON.parse(first.stdout).cells.map((c: any) => c.ours));
    const changed = ssfer(['run', recipe, '--json', '--backend', 'cpu', '--out', out, ...mae, '--set', 'pipeline.pretrain.mask_ratio=0.5']);
    expect(changed.status, changed.stderr).to.equal(0);
    expect(changed.stderr).to.not.match(/reused from the stage cache/);
    expect(fs.readdirSync(path.join(out, '.cache', 'stages')).filter((e) => e.endsWith('.weights'))).to.have.length(2);
    expect(fs.readdirSync(path.join(out, '.cache', 'stages')).some((e) => e.endsWith('.tmp'))).to.equal(false);
  });
});

describe('memory across cells with different pre-trainings', function () {
  this.timeout(300_000);

  it('holds one pre-training at a time: the tensor count after each cell stays flat', () => {
    // tiny-run with its rows pre-training at two mask ratios (two pre-trainings, alternating by cell).
    const tiny = fs
      .readFileSync(recipe, 'utf8')
      .replace('pretrain: { use: none }', 'pretrain: { use: mae, epochs: 1, warmup_epochs: 0, batch_size: 16, pool: { size: 32 } }')
      .replace(/path: data\.labels\.fraction[\s\S]*?values: \[0\.25, 0\.5\]/, 'path: pipeline.pretrain.mask_ratio\n      values: [0.5, 0.75]');
    const file = path.join(writeFiles({ 'tiny-run.yaml': tiny }), 'tiny-run.yaml');
    const r = ssfer(['run', file, '--backend', 'cpu', '--out', tempDir()]);
    expect(r.status, r.stderr).to.equal(0);
    const counts = [...r.stderr.matchAll(/tensors (\d+)/g)].map((m) => Number(m[1]));
    expect(counts).to.have.length(4);
    expect(new Set(counts).size, `tensors after each cell: ${counts.join(', ')}`).to.equal(1);
  });
});

describe('supervised training memory', function () {
  this.timeout(120_000);

  it('keeps the tensor count flat across epochs', async () => {
    await tf.setBackend('cpu');
    const r = await resolveRecipe(recipe);
    const cell = r.cells[3]!;
    const cfg = cell.config as any;
    const ctx = { seed: 1, scale: r.scale, recipeDir: '.' };
    const backbone = r.registry.create('backbone', cfg.model.backbone, ctx);
    const data = await r.registry.create('dataset', cfg.data.dataset, ctx).load({ imageSize: 16, trainSize: 84, testSize: 35 });
    const model = backbone.build(7, 3);
    const counts: number[] = [];
    const stage = r.registry.create('finetune', { ...cfg.pipeline.supervised, epochs: 4, few_labels_epochs: 4 }, ctx);
    const result = await stage.run(
      {
        model,
        buildCopy: () => backbone.build(7, 3, { trainable: false }),
        data,
        labeled: Int32Array.from({ length: 40 }, (_, i) => i),
        unlabeled: Int32Array.from({ length: 44 }, (_, i) => 40 + i),
        labels: data.train.labels,
        boxes: data.train.boxes,
        seed: 5,
      },
      { onStep: () => {}, onEpoch: () => void counts.push(tf.memory().numTensors), shouldStop: () => false },
    );
    expect(result.epochs).to.equal(4);
    expect(counts).to.have.length(4);
    expect(new Set(counts).size, `tensor counts per epoch: ${counts.join(', ')}`).to.equal(1);
    model.dispose();
    result.ema?.dispose();
  });
});
