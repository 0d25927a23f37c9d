import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { mulberry32 } from '../../src/core/rng.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';
import { bin } from './cli.ts';

const recipe = path.join(fixtures, 'recipes', 'resume-run.yaml');
const args = (out: string) => ['run', recipe, '--json', '--backend', 'cpu', '--out', out];
const cellDir = (out: string) => {
  const base = path.join(out, 'resume-run');
  return path.join(base, fs.readdirSync(base).sort().pop()!, 'cells', 'default', 'seed-0');
};

/** Kills a run with SIGKILL `ms` after it has opened its run folder; resolves whether it was killed (or had finished). */
function killAfter(extra: string[], out: string, ms: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args(out), ...extra], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!timer && / · (writing|resuming) /.test(stderr)) timer = setTimeout(() => child.kill('SIGKILL'), ms);
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL');
    });
  });
}

describe('reliability: crash and resume at random moments', function () {
  this.timeout(300_000);

  // Seeded, so a failure is reproduced by running again: three kills, each within 6 s of the
  // run opening its folder (a whole run takes about 10 s), at most 18 s of training killed.
  const SEED = 17;
  const KILLS = 3;

  it(`ends, after ${KILLS} kill -9 at seeded random moments, with the numbers and log of an uninterrupted run`, async () => {
    const reference = tempDir();
    const r = spawnSync(process.execPath, [bin, ...args(reference)], { cwd: projectRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);

    const random = mulberry32(SEED);
    const out = tempDir();
    const moments: number[] = [];
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      const ms = Math.round(random() * 6000);
      moments.push(ms);
      if (await killAfter(i === 0 ? [] : ['--resume'], out, ms)) killed++;
    }
    expect(killed, `killed at ${moments.join(', ')} ms`).to.be.greaterThan(0);
    const last = spawnSync(process.execPath, [bin, ...args(out), '--resume'], { cwd: projectRoot, encoding: 'utf8' });
    expect(last.status, `killed at ${moments.join(', ')} ms\n${last.stderr}`).to.equal(0);

    const want = JSON.parse(fs.readFileSync(path.join(cellDir(reference), 'metrics.json'), 'utf8'));
    const got = JSON.parse(fs.readFileSync(path.join(cellDir(out), 'metrics.json'), 'utf8'));
    for (const key of ['accuracy', 'accuracy_raw', 'confusion', 'per_class', 'semi_epochs', 'steps', 'epochs'])
      expect(got[key], `${key} (killed at ${moments.join(', ')} ms)`).to.deep.equal(want[key]);
    expect(fs.readFileSync(path.join(cellDir(out), 'log.jsonl'), 'utf8')).to.equal(fs.readFileSync(path.join(cellDir(reference), 'log.jsonl'), 'utf8'));
    expect(fs.readdirSync(path.join(out, 'resume-run')), 'one run folder, resumed each time').to.have.length(1);
  });
});
