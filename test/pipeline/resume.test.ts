import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'resume-run.yaml');
const args = (out: string) => ['run', recipe, '--json', '--backend', 'cpu', '--out', out];

function cellDir(out: string): string {
  const base = path.join(out, 'resume-run');
  return path.join(base, fs.readdirSync(base).sort().pop()!, 'cells', 'default', 'seed-0');
}

/** Starts a run and kills it with SIGKILL as soon as `file(out)` exists; resolves with its stderr. */
function killWhen(out: string, extra: string[], file: () => string | null): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args(out), ...extra], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setInterval(() => {
      const f = file();
      if (f && fs.existsSync(f)) {
        clearInterval(timer);
        child.kill('SIGKILL');
      }
    }, 5);
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearInterval(timer);
      resolve({ killed: signal === 'SIGKILL', stderr });
    });
  });
}

describe('exact resume after kill -9', function () {
  this.timeout(300_000);

  it('finishes with the same metrics and log as an uninterrupted run when killed in each stage', async () => {
    const reference = tempDir();
    const r = spawnSync(process.execPath, [bin, ...args(reference)], { cwd: projectRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);

    const out = tempDir();
    const stages = path.join(out, '.cache', 'stages');
    const pretrainCkpt = () =>
      fs.existsSync(stages)
        ? (fs.readdirSync(stages).find((f) => f.endsWith('.ckpt')) ?? null) &&
          path.join(
            stages,
            fs.readdirSync(stages).find((f) => f.endsWith('.ckpt'))!,
          )
        : null;
    const cellCkpt = (stage: string) => () => (fs.existsSync(path.join(out, 'resume-run')) ? path.join(cellDir(out), 'checkpoints', `${stage}.ckpt`) : null);

    // Killed during pre-training, then during the supervised stage, then during the semi-supervised one.
    const first = await killWhen(out, [], pretrainCkpt);
    expect(first.killed, first.stderr).to.equal(true);
    const second = await killWhen(out, ['--resume'], cellCkpt('supervised'));
    expect(second.killed, second.stderr).to.equal(true);
    expect(second.stderr).to.match(/pre-training continues from its checkpoint after epoch [1-7] /);
    const third = await killWhen(out, ['--resume'], cellCkpt('semi'));
    expect(third.killed, third.stderr).to.equal(true);
    expect(third.stderr).to.match(/default: supervised continues from its checkpoint after epoch \d+/);
    expect(fs.existsSync(path.join(cellDir(out), 'metrics.json')), 'the run finished before the last kill').to.equal(false);

    const last = spawnSync(process.execPath, [bin, ...args(out), '--resume'], { cwd: projectRoot, encoding: 'utf8' });
    expect(last.status, last.stderr).to.equal(0);
    expect(last.stderr).to.match(/default: semi continues from its checkpoint after epoch [1-5] /);

    const want = JSON.parse(fs.readFileSync(path.join(cellDir(reference), 'metrics.json'), 'utf8'));
    const got = JSON.parse(fs.readFileSync(path.join(cellDir(out), 'metrics.json'), 'utf8'));
    for (const key of ['accuracy', 'accuracy_raw', 'confusion', 'per_class', 'semi_epochs', 'steps', 'epochs']) expect(got[key], key).to.deep.equal(want[key]);
    // The resumed cell found its finished pre-training in the stage cache.
    expect({ ...got.stages, pretrain: got.stages.pretrain.replace(' (from the stage cache)', '') }).to.deep.equal(want.stages);
    expect(fs.readFileSync(path.join(cellDir(out), 'log.jsonl'), 'utf8')).to.equal(fs.readFileSync(path.join(cellDir(reference), 'log.jsonl'), 'utf8'));
    // A finished cell keeps no checkpoints; a finished pre-training keeps its cache entry only.
    expect(fs.existsSync(path.join(cellDir(out), 'checkpoints'))).to.equal(false);
    expect(fs.readdirSync(stages).filter((f) => f.endsWith('.ckpt'))).to.deep.equal([]);
  });
});
