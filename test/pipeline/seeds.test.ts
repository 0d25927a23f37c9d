import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const seedsRecipe = path.join(fixtures, 'recipes', 'tiny-seeds.yaml');
const oneCell = path.join(fixtures, 'recipes', 'rel-one.yaml');

function ssfer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runDir(out: string, recipe: string): string {
  const base = path.join(out, recipe);
  return path.join(base, fs.readdirSync(base).sort().pop()!);
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const round2 = (x: number) => Math.round(x * 100) / 100;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sampleStd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
/** scipy.stats.t.ppf(0.975, 2), as in the published t tables (4.303). */
const T975_2 = 4.302652729749462;

describe('seeds: every cell over several seeds (end to end on tiny synthetic faces)', function () {
  this.timeout(600_000);
  let out: string;
  let table: any;

  before(() => {
    out = tempDir();
    const r = ssfer(['run', seedsRecipe, '--json', '--backend', 'cpu', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    table = JSON.parse(r.stdout);
  });

  it('runs each cell once per seed in cells/<cell>/seed-<k>, seed k being the recipe seed + k', () => {
    expect(table.seeds).to.equal(3);
    const dir = runDir(out, 'tiny-seeds');
    expect(readJson(path.join(dir, 'run.json')).seeds).to.equal(3);
    for (const c of table.cells) {
      const folder = path.join(dir, 'cells', c.id.replace(/\//g, '__'));
      expect(fs.readdirSync(folder).sort()).to.deep.equal(['seed-0', 'seed-1', 'seed-2']);
      for (let k = 0; k < 3; k++) {
        const m = readJson(path.join(folder, `seed-${k}`, 'metrics.json'));
        expect(m.id).to.equal(c.id);
        expect(m.seed).to.equal(5 + k);
        expect(round2(m.accuracy * 100)).to.equal(c.ours_runs[k]);
        expect(fs.existsSync(path.join(folder, `seed-${k}`, 'model', 'model.json'))).to.equal(true);
      }
    }
    // The seeds differ: a table of one number three times would say nothing about them.
    expect(new Set(table.cells.flatMap((c: any) => c.ours_runs)).size).to.be.above(3);
  });

  it('gives per cell the mean, the sample std, each seed’s value, the 95 % t-interval and the mean health', () => {
    const dir = runDir(out, 'tiny-seeds');
    for (const c of table.cells) {
      const seeds = [0, 1, 2].map((k) => readJson(path.join(dir, 'cells', c.id.replace(/\//g, '__'), `seed-${k}`, 'metrics.json')));
      const acc = seeds.map((m) => m.accuracy * 100);
      expect(c.status).to.equal('done');
      expect(c.ours).to.equal(round2(mean(acc)));
      expect(c.ours_std).to.equal(round2(sampleStd(acc)));
      const half = (T975_2 * sampleStd(acc)) / Math.sqrt(3);
      expect(c.ci95).to.deep.equal([round2(mean(acc) - half), round2(mean(acc) + half)]);
      for (const [k, v] of Object.entries(c.health as Record<string, number>)) {
        expect(v, k).to.be.closeTo(mean(seeds.map((m) => m.health[k])), 1e-12);
      }
      expect(Object.keys(c.health)).to.include('supervised_loss_last');
    }
  });

  it('gives each row its paired difference to the baseline row, same column and seed, with its t-interval', () => {
    const dir = runDir(out, 'tiny-seeds');
    const accOf = (id: string) => [0, 1, 2].map((k) => readJson(path.join(dir, 'cells', id.replace(/\//g, '__'), `seed-${k}`, 'metrics.json')).accuracy * 100);
    expect(table.baseline).to.deep.equal({ row: '0.002' });
    for (const column of ['0.25', '0.5']) {
      const base = table.cells.find((c: any) => c.id === `lr=0.002/labels=${column}`);
      expect(base).to.deep.include({ diff: null, diff_ci95: null });
      const other = table.cells.find((c: any) => c.id === `lr=0.02/labels=${column}`);
      const d = accOf(other.id).map((v, k) => v - accOf(base.id)[k]!);
      expect(other.diff).to.equal(round2(mean(d)));
      const half = (T975_2 * sampleStd(d)) / Math.sqrt(3);
      expect(other.diff_ci95).to.deep.equal([round2(mean(d) - half), round2(mean(d) + half)]);
    }
    const md = fs.readFileSync(path.join(dir, 'table.md'), 'utf8');
    expect(md).to.contain('Each entry: mean ± std over 3 seeds (paper)');
    expect(md).to.contain('Paired difference to 0.002 (same column, same seed; percentage points), mean over 3 seeds [95 % t-interval]');
    expect(md).to.match(/\| 0\.02 \| [+-]\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]\*? \| [+-]\d+\.\d\d \[/);
  });

  it('--seeds overrides the recipe, and seed k gives the same numbers whatever the number of seeds', () => {
    const two = ssfer(['run', seedsRecipe, '--json', '--backend', 'cpu', '--out', tempDir(), '--seeds', '2']);
    expect(two.status, two.stderr).to.equal(0);
    const t2 = JSON.parse(two.stdout);
    expect(t2.seeds).to.equal(2);
    expect(t2.cells.map((c: any) => c.ours_runs)).to.deep.equal(table.cells.map((c: any) => c.ours_runs.slice(0, 2)));

    const one = ssfer(['run', seedsRecipe, '--json', '--backend', 'cpu', '--out', tempDir(), '--seeds', '1']);
    expect(one.status, one.stderr).to.equal(0);
    const t1 = JSON.parse(one.stdout);
    for (const [i, c] of t1.cells.entries()) {
      expect(c).to.deep.include({ ours: table.cells[i].ours_runs[0], ours_std: null, ours_runs: [table.cells[i].ours_runs[0]], ci95: null });
      if (c.id.startsWith('lr=0.02/')) expect(c.diff_ci95).to.equal(null);
    }
    const bad = ssfer(['run', seedsRecipe, '--backend', 'cpu', '--out', tempDir(), '--seeds', 'three']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('<--seeds three>:1:1: seeds: must be integer (got "three")');
  });

  it('plan shows the runs: each cell once per seed, the cells of one seed sharing its stages', () => {
    const r = ssfer(['plan', seedsRecipe, '--json']);
    expect(r.status, r.stderr).to.equal(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.seeds).to.equal(3);
    expect(plan.runs.map((x: any) => `${x.cell}#${x.seed}`)).to.deep.equal(
      [5, 6, 7].flatMap((s) => ['lr=0.002/labels=0.25', 'lr=0.002/labels=0.5', 'lr=0.02/labels=0.25', 'lr=0.02/labels=0.5'].map((c) => `${c}#${s}`)),
    );
    // The stage keys hash the seed: no two runs of different seeds share a stage.
    const pretrain = plan.shared.filter((s: any) => s.stage === 'pretrain');
    expect(pretrain.map((s: any) => [s.seed_index, s.cells.length])).to.deep.equal([
      [0, 4],
      [1, 4],
      [2, 4],
    ]);
    expect(plan.shared.filter((s: any) => s.stage === 'supervised')).to.have.length(12);
    const text = ssfer(['plan', seedsRecipe, '--seeds', '2']).stdout;
    expect(text).to.contain('Runs: 4 cells × 2 seeds = 8, in this order');
    expect(text).to.match(/pretrain +2 distinct for 8 runs/);
    const help = ssfer(['run', '--help']).stdout;
    for (const word of ['--seeds N', 'cells/<cell>/seed-<k>/', 'ours_runs', 'ci95', 'grid.baseline', 'diff_ci95']) expect(help, word).to.contain(word);
  });
});

describe('seeds: resume', function () {
  this.timeout(600_000);
  const args = (out: string, ...more: string[]) => [
    'run',
    oneCell,
    '--json',
    '--backend',
    'cpu',
    '--out',
    out,
    '--seeds',
    '2',
    '--set',
    'pipeline.supervised.epochs=12',
    ...more,
  ];

  it('keeps seed 0 of a cell killed in seed 1, continues seed 1 from its checkpoint, and ends as an uninterrupted run', async () => {
    const referenceOut = tempDir();
    const reference = ssfer(args(referenceOut));
    expect(reference.status, reference.stderr).to.equal(0);

    const out = tempDir();
    const seedDir = (k: number) =>
      fs.existsSync(path.join(out, 'rel-one')) && fs.readdirSync(path.join(out, 'rel-one')).length
        ? path.join(runDir(out, 'rel-one'), 'cells', 'default', `seed-${k}`)
        : '';
    const killed = await new Promise<boolean>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, ...args(out)], { cwd: projectRoot, stdio: 'ignore' });
      const timer = setInterval(() => {
        if (seedDir(1) && fs.existsSync(path.join(seedDir(1), 'checkpoints', 'supervised.ckpt'))) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 5);
      child.on('error', reject);
      child.on('exit', (_code, signal) => {
        clearInterval(timer);
        resolve(signal === 'SIGKILL');
      });
    });
    expect(killed).to.equal(true);
    const seed0 = path.join(seedDir(0), 'metrics.json');
    expect(fs.existsSync(seed0), 'seed 0 finished before seed 1 began').to.equal(true);
    expect(fs.existsSync(path.join(seedDir(1), 'metrics.json'))).to.equal(false);
    const seed0Time = fs.statSync(seed0).mtimeMs;

    const resumed = ssfer(args(out, '--resume'));
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.match(/default seed 1: supervised continues from its checkpoint after epoch \d+/);
    expect(resumed.stderr, 'seed 0 is not trained again').to.not.match(/default seed 0: accuracy/);
    expect(fs.statSync(seed0).mtimeMs).to.equal(seed0Time);
    const table = JSON.parse(resumed.stdout);
    expect(table.cells[0].ours_runs).to.have.length(2);
    expect(table.cells[0]).to.deep.equal(JSON.parse(reference.stdout).cells[0]);
    // Step by step: the resumed seed's log is the uninterrupted one's.
    const logOf = (dir: string) => fs.readFileSync(path.join(runDir(dir, 'rel-one'), 'cells', 'default', 'seed-1', 'log.jsonl'), 'utf8');
    expect(logOf(out)).to.equal(logOf(referenceOut));

    // Resumed with more seeds, the finished ones are kept and the new one runs.
    const more = ssfer([...args(out, '--resume'), '--seeds', '3']);
    expect(more.status, more.stderr).to.equal(0);
    expect(fs.statSync(seed0).mtimeMs).to.equal(seed0Time);
    expect(more.stderr)
      .to.match(/default seed 2: accuracy/)
      .and.not.match(/default seed [01]: accuracy/);
    const three = JSON.parse(more.stdout);
    expect(three.cells[0].ours_runs.slice(0, 2)).to.deep.equal(table.cells[0].ours_runs);
    expect(three.cells[0].ours_runs).to.have.length(3);
  });
});
