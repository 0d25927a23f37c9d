import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { projectRoot, writeFiles } from './helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');

function ssfer(args: string[], cwd = projectRoot, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI', () => {
  it('validates every recipe in recipes/', () => {
    const files = fs
      .readdirSync(path.join(projectRoot, 'recipes'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `recipes/${f}`);
    expect(files.length).to.be.at.least(12);
    const r = ssfer(['validate', ...files]);
    expect(r.stderr).to.equal('');
    expect(r.status).to.equal(0);
    expect(r.stdout.match(/^ok /gm)).to.have.length(files.length);
  });

  it('plan --json prints only JSON: 48 cells for Table 14, all sharing one pre-training', () => {
    const r = ssfer(['plan', 'recipes/ablation-kappa.yaml', '--json']);
    expect(r.status).to.equal(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.cells).to.have.length(48);
    expect(plan.cells[47].id).to.equal('kappa=iou/dataset=affectnet8/labels=0.1');
    expect(plan.cells[0].plugins['pipeline.supervised.mixing.kappa']).to.equal('psnr');
    const pretrain = plan.shared.filter((s: any) => s.stage === 'pretrain');
    expect(pretrain).to.have.length(1);
    expect(pretrain[0].cells).to.have.length(48);
    expect(plan.shared.filter((s: any) => s.stage === 'supervised')).to.have.length(48);
  });

  it('plan prints the plugins every cell shares once, each slot with its nested ones, then what each cell varies', () => {
    const r = ssfer(['plan', 'recipes/ablation-kappa.yaml', '--scale', 'smoke']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/^every cell: .*pipeline\.supervised supervised\(mixing facemix\(loss L4\), augment weak\)/m);
    expect(r.stdout).to.match(/^kappa=iou\/dataset=affectnet8\/labels=0\.1 +data\.dataset affectnet · pipeline\.supervised\.mixing\.kappa iou$/m);
    expect(r.stdout).to.match(/pretrain +1 distinct for 48 cells/);
  });

  it('refuses a broken recipe with exit status 2, file:line:col, and writes nothing', () => {
    const dir = writeFiles({
      'broken.yaml': `extends: ${path.join(projectRoot, 'recipes', 'ablation-kappa.yaml')}\nseed: banana\npipeline:\n  pretrain: { mask_ratio: 1.5 }\n`,
    });
    const out = path.join(dir, 'results');
    const r = ssfer(['run', path.join(dir, 'broken.yaml'), '--out', out]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/broken\.yaml:2:7: seed: must be integer \(got "banana"\)/);
    expect(r.stderr).to.match(/broken\.yaml:4:27: pipeline\.pretrain\.mask_ratio: must be < 1 \(got 1\.5\)/);
    expect(r.stderr).to.match(/2 problems found; nothing was run/);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('answers a bad flag or command with exit status 2 and the way out', () => {
    const bad = ssfer(['plan', 'recipes/ablation-kappa.yaml', '--scael', 'smoke']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/Unknown option '--scael'.*ssfer plan --help/);
    const unknown = ssfer(['trian']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/unknown command 'trian'/);
    const out = writeFiles({});
    const interval = ssfer(['run', 'recipes/ablation-kappa.yaml', '--out', out], projectRoot, { ...process.env, SSFER_CHECKPOINT_SECONDS: 'soon' });
    expect(interval.status).to.equal(2);
    expect(interval.stderr).to.include('SSFER_CHECKPOINT_SECONDS=soon: expected a number of seconds ≥ 0; unset it');
    expect(fs.readdirSync(out)).to.deep.equal([]);
  });

  it('synth writes a synthetic set in RAF-DB layout that decodes with a real image library', async () => {
    const out = path.join(writeFiles({}), 'set');
    const r = ssfer(['synth', '--out', out, '--train', '14', '--test', '7', '--size', '40', '--seed', '3']);
    expect(r.status, r.stderr).to.equal(0);
    const lines = fs
      .readFileSync(path.join(out, 'EmoLabel', 'list_patition_label.txt'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).to.have.length(21);
    for (const line of lines) expect(line).to.match(/^(train_\d{5}|test_\d{4})\.png [1-7]$/);
    const first = lines[0]!.split(' ')[0]!.replace('.png', '_aligned.png');
    const { default: sharp } = await import('sharp');
    const meta = await sharp(path.join(out, 'Image', 'aligned', first)).metadata();
    expect([meta.width, meta.height]).to.deep.equal([40, 40]);
    const box = fs
      .readFileSync(path.join(out, 'Annotation', 'boundingbox', first.replace('_aligned.png', '_boundingbox.txt')), 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(box).to.have.length(4);
    expect(box[2]!).to.be.greaterThan(box[0]!);
    const again = ssfer(['synth', '--out', out]);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.match(/is not empty/);
  });

  it('synth writes any dataset slot, and refuses a wrong one at its flag', () => {
    const out = path.join(writeFiles({}), 'set');
    const r = ssfer(['synth', '--out', out, '--dataset', '{use: affectnet, classes: 8}', '--train', '16', '--test', '8', '--size', '16']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\(16 train, 8 test, 16 px, 8 classes\)/);
    // AffectNet-8's stand-in has contempt, which RAF-DB's layout writes as label 8.
    const labels = fs
      .readFileSync(path.join(out, 'EmoLabel', 'list_patition_label.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => Number(l.split(' ')[1]));
    expect(labels.every((l) => l >= 1 && l <= 8)).to.equal(true);
    const bad = ssfer(['synth', '--out', path.join(writeFiles({}), 'x'), '--dataset', 'rafbd']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/<--dataset rafbd>:1:1: data\.dataset\.use: unknown dataset 'rafbd' — did you mean 'rafdb'\?/);
    const classes = ssfer(['synth', '--out', path.join(writeFiles({}), 'y'), '--dataset', 'rafdb', '--classes', '8']);
    expect(classes.status).to.equal(2);
    expect(classes.stderr).to.match(/<--classes 8>:1:1: data\.dataset\.classes: must be one of 7 \(got 8\)/);
  });

  it('prints --help for every command', () => {
    for (const c of ['validate', 'plan', 'plugins', 'run', 'synth', 'export', 'new', 'test', 'worker', 'status', 'collect']) {
      const r = ssfer([c, '--help']);
      expect(r.status, c).to.equal(0);
      expect(r.stdout, c).to.match(new RegExp(`^Usage: ssfer ${c}`));
    }
    expect(ssfer(['--help']).stdout).to.match(/Commands:/);
  });

  it('test runs node:test files from any folder: 0 when they pass, 1 when one fails, 2 when one cannot be imported', () => {
    const dir = writeFiles({
      'pass.test.ts':
        "import assert from 'node:assert/strict';\nimport { test } from 'node:test';\nimport { tf } from 'ssfer';\n\ntest('adds', () => assert.equal(tf.add(1, 2).dataSync()[0], 3));\n",
      'fail.test.ts':
        "import assert from 'node:assert/strict';\nimport { test } from 'node:test';\n\ntest('later', async () => {\n  await new Promise((r) => setTimeout(r, 50));\n  assert.equal(1, 2);\n});\n",
      'broken.test.ts': 'const x: number = ;\n',
    });
    const pass = ssfer(['test', 'pass.test.ts'], dir);
    expect(pass.status, pass.stderr).to.equal(0);
    expect(pass.stdout).to.match(/^ok 1 - adds$/m);
    const fail = ssfer(['test', 'pass.test.ts', 'fail.test.ts'], dir);
    expect(fail.status).to.equal(1);
    expect(fail.stdout).to.match(/^not ok \d - later$/m);
    const broken = ssfer(['test', 'broken.test.ts'], dir);
    expect(broken.status).to.equal(2);
    expect(broken.stderr).to.equal(`ssfer test: ${path.join(dir, 'broken.test.ts')}:1:19: the test file does not compile: Unexpected ";"\n`);
    expect(ssfer(['test', 'nowhere.test.ts'], dir).stderr).to.equal(`ssfer test: test file not found: ${path.join(dir, 'nowhere.test.ts')}\n`);
  });

  it('lists plugins with their options and defaults', () => {
    const r = ssfer(['plugins', 'kappa', '--json']);
    expect(r.status).to.equal(0);
    const list = JSON.parse(r.stdout);
    expect(list.map((p: any) => p.name)).to.deep.equal(['fsim', 'iou', 'psnr', 'ssim']);
    const text = ssfer(['plugins', 'pretrain']).stdout;
    expect(text).to.match(/mask_ratio: default 0\.75/);
    const finetune = JSON.parse(ssfer(['plugins', 'finetune', '--json']).stdout);
    expect(finetune.map((p: any) => p.name)).to.deep.equal(['supervised']);
    expect(finetune[0].options.properties.mixing).to.deep.include({ 'x-slot': 'mixing', default: { use: 'facemix' } });
    const all = ssfer(['plugins']).stdout;
    expect(all).to.match(/^finetune$/m);
    expect(all).to.match(/^kappa$/m);
  });
});
