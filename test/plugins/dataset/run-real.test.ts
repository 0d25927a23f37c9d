import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { fixtures, projectRoot, tempDir, writeFiles } from '../../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');

function ssfer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ssfer run on a RAF-DB folder (end to end through the real loader)', function () {
  this.timeout(120_000);

  it('trains and evaluates on the folder, not a stand-in, and reuses the decoded images', () => {
    const raf = path.join(tempDir('ssfer-e2e-'), 'rafdb');
    const synth = ssfer(['synth', '--out', raf, '--train', '42', '--test', '21', '--size', '32', '--seed', '3']);
    expect(synth.status, synth.stderr).to.equal(0);
    const out = tempDir('ssfer-e2e-out-');
    // Whole-image boxes give FaceMix a constant κ, which stops it unless the recipe allows it.
    const tiny = fs
      .readFileSync(path.join(fixtures, 'recipes', 'tiny-run.yaml'), 'utf8')
      .replace('set: { pipeline.supervised.mixing: { use: facemix } }', 'set: { pipeline.supervised.mixing: { use: facemix, allow_constant_kappa: true } }');
    const recipe = path.join(writeFiles({ 'tiny-run.yaml': tiny }), 'tiny-run.yaml');
    const args = [
      'run',
      recipe,
      '--json',
      '--backend',
      'cpu',
      '--out',
      out,
      '--set',
      'data.dataset.use=rafdb',
      '--set',
      `data.roots.rafdb=${raf}`,
      '--set',
      'data.size={train: null, test: null}',
      // the loader is under test here; the default boxes (a detector on these aligned images) are tested in face-boxes/
      '--set',
      'data.boxes=annotations',
    ];
    const first = ssfer(args);
    expect(first.status, first.stderr).to.equal(0);
    const table = JSON.parse(first.stdout);
    expect(table.notes.join(' ')).to.not.match(/stand-in/);
    const runDir = path.join(out, 'tiny-run', fs.readdirSync(path.join(out, 'tiny-run')).sort().pop()!);
    const metrics = JSON.parse(fs.readFileSync(path.join(runDir, 'cells', 'mixing=facemix__labels=0.5', 'seed-0', 'metrics.json'), 'utf8'));
    expect(metrics.dataset).to.deep.include({
      name: 'rafdb',
      display: 'RAF-DB',
      stand_in: null,
      source: raf,
      image_size: 16,
      notes: ['face boxes: annotations, but the dataset has none: every box is the whole image'],
    });
    expect(metrics.dataset.train_count).to.be.a('number').above(0);
    expect(metrics.dataset.key).to.match(/^[0-9a-f]{16}$/);
    expect(table.notes).to.include('RAF-DB: face boxes: annotations, but the dataset has none: every box is the whole image');
    expect(table.notes).to.include(
      'mixing=facemix/labels=0.5: supervised: FaceMix ran with a constant κ 0 (every face box is the whole image): allow_constant_kappa was set, so its rows are Mixup with a constant weight on the real images',
    );
    expect(metrics.test_count).to.equal(21);
    expect(metrics.labeled_count + metrics.unlabeled_count).to.equal(42);

    const cacheDir = path.join(out, '.cache', 'data');
    const [entry] = fs.readdirSync(cacheDir);
    expect(entry).to.match(/^rafdb-[0-9a-f]{32}\.bin$/);
    const written = fs.statSync(path.join(cacheDir, entry!)).mtimeMs;
    const again = ssfer(args);
    expect(again.status, again.stderr).to.equal(0);
    expect(fs.readdirSync(cacheDir)).to.deep.equal([entry]);
    expect(fs.statSync(path.join(cacheDir, entry!)).mtimeMs).to.equal(written);
    expect(JSON.parse(again.stdout).cells.map((c: { ours: number }) => c.ours)).to.deep.equal(table.cells.map((c: { ours: number }) => c.ours));
  });

  it('data.roots names a folder per dataset, keeps one shared pre-training, and a typo is refused at the flag', () => {
    const plan = ssfer([
      'plan',
      path.join(projectRoot, 'recipes', 'ablation-kappa.yaml'),
      '--scale',
      'smoke',
      '--json',
      '--set',
      'data.roots.rafdb=/data/raf-basic',
    ]);
    expect(plan.status, plan.stderr).to.equal(0);
    const cells = JSON.parse(plan.stdout).cells as { id: string; config: { data: { dataset: { use: string }; roots: Record<string, string> } } }[];
    expect(cells).to.have.length(48);
    for (const c of cells) expect(c.config.data.roots).to.deep.equal({ rafdb: '/data/raf-basic' });
    // Pre-training stays shared by every column: folders are not part of its key.
    const shared = JSON.parse(plan.stdout).shared as { stage: string; cells: string[] }[];
    expect(shared.filter((s) => s.stage === 'pretrain').map((s) => s.cells.length)).to.deep.equal([48]);
    const bad = ssfer(['plan', path.join(projectRoot, 'recipes', 'ablation-kappa.yaml'), '--set', 'data.roots.rafbd=/x']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/<--set data\.roots\.rafbd=\/x>:1:\d+: data\.roots\.rafbd: no dataset 'rafbd' with a root option — did you mean 'rafdb'\?/);
  });
});
