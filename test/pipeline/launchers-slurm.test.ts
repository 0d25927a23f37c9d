import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { projectRoot, tempDir } from '../helpers.ts';
import { attempts, expectSameNumbers, fourCells, runDir, runDirIfAny, ssfer, ssferWhile, unitDirs, unitInTraining, until } from './launch-common.ts';

/**
 * The slurm launcher against a real SLURM: Debian's slurm-wlm on this one node, started by
 * test/slurm/cluster.sh (munged, slurmctld, slurmd; no cgroups). The tests are skipped, saying so,
 * only when SLURM is not installed.
 */
function startCluster(): { conf: string } | { skip: string } {
  const r = spawnSync('bash', [path.join(projectRoot, 'test', 'slurm', 'cluster.sh'), 'start'], { encoding: 'utf8', timeout: 120_000 });
  if (r.status === 3) return { skip: r.stderr.trim() };
  if (r.status !== 0) throw new Error(`test/slurm/cluster.sh start failed (status ${r.status}):\n${r.stderr}`);
  return { conf: r.stdout.trim().split('\n').pop()! };
}

describe('launchers: SLURM job arrays (a real one-node cluster)', function () {
  this.timeout(900_000);
  let env: NodeJS.ProcessEnv;
  let reference: string;
  const slurmArgs = (out: string) => ['run', fourCells, '--backend', 'native', '--out', out, '--launcher', 'slurm', '--set', 'launcher.poll_seconds=0.5'];

  before(function () {
    const cluster = startCluster();
    if ('skip' in cluster) {
      console.log(`    skipped: ${cluster.skip}`);
      this.skip();
    }
    env = { SLURM_CONF: cluster.conf };
    const out = tempDir();
    const r = ssfer(['run', fourCells, '--backend', 'native', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    reference = runDir(out);
  });

  it('gives the table and every unit’s numbers of the inline launcher at one thread per task', () => {
    const out = tempDir();
    const r = ssfer(slurmArgs(out), env);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/SLURM job \d+: 4 tasks over 4 units/);
    const dir = runDir(out);
    expectSameNumbers(dir, reference);
    for (const u of unitDirs(dir)) expect((attempts(u)[0] as { slurm?: string }).slurm).to.match(/^\d+_[0-3]$/);
    const script = fs.readFileSync(path.join(dir, 'slurm', 'round-1.sh'), 'utf8');
    expect(script).to.contain('#SBATCH --array=0-3').and.contain('#SBATCH --cpus-per-task=1').and.contain('export SSFER_NATIVE_THREADS=1');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'))).to.include({ launcher: 'slurm', status: 'finished', backend: 'native' });
  });

  it('starts a task’s unit again after kill -9 of its process and after scancel of the task, from its checkpoint, with the same numbers', async () => {
    const out = tempDir();
    let killed: { unit: string; pid: number } | null = null;
    let cancelled: { unit: string; task: string } | null = null;
    const r = await ssferWhile(
      [...slurmArgs(out), '--set', 'launcher.max_concurrent=1'],
      async () => {
        await until('the run folder', () => runDirIfAny(out));
        const at = runDir(out);
        killed = await until('a unit in its supervised stage', () => unitInTraining(at));
        process.kill(killed.pid, 'SIGKILL');
        cancelled = await until('another unit in its supervised stage', () => {
          const u = unitInTraining(at);
          if (!u || u.unit === killed!.unit) return null;
          const task = (JSON.parse(fs.readFileSync(path.join(u.unit, 'unit.lock'), 'utf8')) as { slurm?: string }).slurm;
          return task ? { unit: u.unit, task } : null;
        });
        const s = spawnSync('scancel', [cancelled.task], { env: { ...process.env, ...env }, encoding: 'utf8' });
        expect(s.status, s.stderr).to.equal(0);
      },
      env,
    );
    expect(r.status, r.stderr).to.equal(0);
    const dir = runDir(out);
    // kill -9: the task's script starts the worker again, which continues the unit.
    const k = attempts(killed!.unit).filter((a) => a.event === 'start');
    expect(k.length).to.equal(2);
    expect(k[0]!.pid).to.equal(killed!.pid);
    const killedTask = (attempts(killed!.unit)[0] as { slurm?: string }).slurm!;
    expect(fs.readFileSync(path.join(dir, 'slurm', `${killedTask}.out`), 'utf8'))
      .to.contain('the worker ended with status 137 (killed or crashed); starting it again')
      .and.match(/supervised continues from its checkpoint after epoch \d+/);
    // scancel: SLURM stops the task (SIGTERM: the worker checkpoints), ssfer run submits the unit again.
    const label = path.basename(path.dirname(cancelled!.unit)).replace(/__/g, '/');
    expect(r.stderr).to.contain(`${label}: its task ended without finishing it`).and.contain('; submitting it again');
    expect(fs.existsSync(path.join(dir, 'slurm', 'round-2.sh'))).to.equal(true);
    const c = attempts(cancelled!.unit);
    expect(c.filter((a) => a.event === 'start').length).to.equal(2);
    expect(
      c.find((a) => a.event === 'end'),
      'the first attempt stopped on SIGTERM and said so',
    ).to.include({ outcome: 'interrupted' });
    expect(c[c.length - 1]).to.include({ event: 'end', outcome: 'done' });
    expectSameNumbers(dir, reference);
  });

  it('--detach returns at once; status follows the job, and the job after it builds the same table', async () => {
    const out = tempDir();
    const r = ssfer([...slurmArgs(out), '--detach'], env);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/SLURM job \d+ builds the table after job \d+/);
    const dir = runDir(out);
    const early = ssfer(['status', dir, '--json'], env);
    expect(early.status, early.stderr).to.equal(0);
    expect(JSON.parse(early.stdout).counts.done).to.be.below(4);
    await until('the collect job', () => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).status === 'finished', 600_000, 500);
    expectSameNumbers(dir, reference);
    const status = ssfer(['status', dir], env);
    expect(status.stdout).to.contain('run: finished · launcher slurm').and.contain('4 done · 0 running · 0 failed · 0 waiting');
  });
});
