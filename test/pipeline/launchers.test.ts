import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createPlugin } from '../../src/core/registry.ts';
import { acquireLease, isLease, processAlive } from '../../src/core/lease.ts';
import { resolveRun } from '../../src/pipeline/manifest.ts';
import { cellFolders } from '../../src/pipeline/results.ts';
import { planUnits, UNIT_LEASE } from '../../src/pipeline/units.ts';
import { sharedUnitsAfter } from '../../src/pipeline/worker.ts';
import { tempDir } from '../helpers.ts';
import { attempts, expectSameNumbers, fourCells, runDir, runDirIfAny, ssfer, ssferWhile, unitDirs, unitInTraining, until } from './launch-common.ts';

/** The processes running `ssfer worker <dir>` (Linux: their command lines in /proc). */
function workersOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(path.join('/proc', entry, 'cmdline'), 'utf8').split('\0');
      const at = args.indexOf('worker');
      if (at >= 0 && path.resolve(args[at + 1] ?? '') === path.resolve(dir)) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

/** `ssfer run` of the four-cell fixture on the process pool of two workers, with more flags. */
function poolArgs(out: string, more: readonly string[] = []): string[] {
  return ['run', fourCells, '--backend', 'native', '--out', out, '--launcher', 'processes', '--set', 'launcher.workers=2', ...more];
}

/** What the pool's two workers printed. */
function workerLogs(dir: string): string {
  return ['w1', 'w2'].map((w) => fs.readFileSync(path.join(dir, 'workers', `${w}.log`), 'utf8')).join('\n');
}

describe('launchers: the process pool’s size', () => {
  it('takes one worker per core with workers: null, and divides the cores among the workers unless threads_per_worker is set', async () => {
    const cores = os.availableParallelism();
    const pool = async (options: object) =>
      (await createPlugin('launcher', { use: 'processes', ...options })) as unknown as { workers: number; threads: number };
    expect(await pool({ workers: null, threads_per_worker: 1 })).to.include({ workers: cores, threads: 1 });
    expect(await pool({ workers: null })).to.include({ workers: cores, threads: 1 });
    expect(await pool({ workers: 1 })).to.include({ workers: 1, threads: cores });
    expect(await pool({})).to.include({ workers: 2, threads: Math.max(1, Math.floor(cores / 2)) });
  });
});

/**
 * The process pool against the inline launcher, on four cells that share an MAE pre-training, at
 * one thread per unit (the same summation order in both): the same table and, unit by unit, the
 * same numbers and step logs — also when a worker is killed with kill -9 in the middle of a unit,
 * which is then started again and continues from its epoch checkpoint.
 */
describe('launchers: the process pool (end to end on tiny synthetic faces)', function () {
  this.timeout(900_000);
  let reference: string;

  before(() => {
    const out = tempDir();
    const r = ssfer(['run', fourCells, '--backend', 'native', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    reference = runDir(out);
  });

  it('gives the table and every unit’s numbers of the inline launcher, and computes the shared pre-training once', () => {
    const out = tempDir();
    const r = ssfer(poolArgs(out, ['--set', 'launcher.threads_per_worker=1']));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('2 worker processes × 1 thread for 4 units');
    const dir = runDir(out);
    expectSameNumbers(dir, reference);
    const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    expect(run).to.include({ launcher: 'processes', status: 'finished', backend: 'native' });
    // Both workers trained (each unit's attempt names its worker) …
    const workers = new Set(unitDirs(dir).map((u) => (attempts(u)[0] as { worker?: string }).worker));
    expect([...workers].sort()).to.deep.equal(['w1', 'w2']);
    // … and one pre-training was computed: one cache entry, its lease gone, and the worker that did not compute it waited for it or read it.
    const stages = path.join(out, '.cache', 'stages');
    expect(fs.readdirSync(stages).filter((f) => f.endsWith('.weights'))).to.have.length(1);
    expect(fs.readdirSync(stages).filter((f) => f.endsWith('.lock'))).to.deep.equal([]);
    const logs = workerLogs(dir);
    expect(logs).to.match(/waiting for the pre-training pretrain-[0-9a-f]+ that pid \d+ on .* computes|pre-training reused from the stage cache/);
  });

  it('gives a queue worker, for its ETA, the units nobody has started divided among the units running', async () => {
    // The finished four-cell run, with three units' results taken away (to be trained again) and one of them held by this process.
    const dir = path.join(tempDir(), 'run');
    fs.cpSync(reference, dir, { recursive: true });
    const { recipe, launch } = await resolveRun(dir);
    const units = planUnits(recipe, dir, cellFolders(recipe, dir, true), true);
    expect(units).to.have.length(4);
    const count = sharedUnitsAfter(units, launch.launch, 2, 0);
    expect(count()).to.equal(0);
    for (const u of units.slice(1)) fs.rmSync(path.join(u.dir, 'metrics.json'));
    expect(count()).to.equal(3); // three waiting, none running: as if one worker were left
    const lease = acquireLease(path.join(units[1]!.dir, UNIT_LEASE), { unit: units[1]!.key });
    expect(isLease(lease)).to.equal(true);
    try {
      expect(count()).to.equal(2); // two waiting, shared by the one unit running
      const second = acquireLease(path.join(units[2]!.dir, UNIT_LEASE), { unit: units[2]!.key });
      expect(isLease(second)).to.equal(true);
      expect(count()).to.equal(0.5); // one waiting, two running
      if (isLease(second)) second.release();
      // Read at most every so often: a worker's ETA does not open every unit's files at each step.
      const slow = sharedUnitsAfter(units, launch.launch, 2, 60_000);
      expect(slow()).to.equal(2);
      fs.rmSync(path.join(units[0]!.dir, 'metrics.json'));
      expect(slow()).to.equal(2);
      expect(sharedUnitsAfter(units, launch.launch, 2, 0)()).to.equal(3);
    } finally {
      if (isLease(lease)) lease.release();
    }
  });

  it('computes two pre-trainings side by side: a worker takes a unit of another pre-training rather than wait for one that another worker computes', () => {
    const out = tempDir();
    // Rows of two mask ratios: units 1–2 share one pre-training, units 3–4 another.
    const rows = '[{name: mask, path: pipeline.pretrain.mask_ratio, values: [0.5, 0.75]}]';
    const r = ssfer(poolArgs(out, ['--set', `grid.rows=${rows}`]));
    expect(r.status, r.stderr).to.equal(0);
    const dir = runDir(out);
    const stages = path.join(out, '.cache', 'stages');
    expect(fs.readdirSync(stages).filter((f) => f.endsWith('.weights'))).to.have.length(2);
    const logs = workerLogs(dir);
    expect(logs, logs).not.to.contain('waiting for the pre-training');
    // The two pre-trainings were computed by the two workers.
    const byMask = (m: string) => unitDirs(dir).filter((u) => u.includes(`mask=${m}`));
    const first = (units: string[]) =>
      units.map((u) => attempts(u)[0] as unknown as { worker?: string; time: string }).sort((a, b) => a.time.localeCompare(b.time))[0]!.worker;
    expect(first(byMask('0.5'))).not.to.equal(first(byMask('0.75')));
  });

  it('starts a unit again after its worker is killed with kill -9, from its checkpoint, with the same numbers; status and collect follow it', async () => {
    const out = tempDir();
    let killed: { unit: string; pid: number } | null = null;
    let statusWhileRunning: { counts: Record<string, number>; units: { state: string; where?: string }[] } | null = null;
    let collectWhileRunning = '';
    const r = await ssferWhile(poolArgs(out, ['--set', 'launcher.threads_per_worker=1']), async () => {
      await until('the run folder', () => runDirIfAny(out));
      const at = runDir(out);
      // A unit of this fixture trains for about a second, less than status and collect take: the
      // run's workers are held (SIGSTOP) while the two look at it and the unit to kill is chosen,
      // so the unit seen training is still training when it is killed.
      for (;;) {
        await until('a unit in its supervised stage', () => unitInTraining(at));
        const held = workersOf(at);
        for (const pid of held) process.kill(pid, 'SIGSTOP');
        try {
          killed = unitInTraining(at);
          if (!killed) continue;
          const s = ssfer(['status', at, '--json']);
          expect(s.status, s.stderr).to.equal(0);
          statusWhileRunning = JSON.parse(s.stdout);
          const c = ssfer(['collect', at]);
          expect(c.status, c.stderr).to.equal(0);
          collectWhileRunning = c.stderr;
          process.kill(killed.pid, 'SIGKILL');
          break;
        } finally {
          for (const pid of held) {
            try {
              process.kill(pid, 'SIGCONT');
            } catch {
              // the one killed
            }
          }
        }
      }
    });
    expect(r.status, r.stderr).to.equal(0);
    const dir = runDir(out);
    expect(statusWhileRunning!.counts.running).to.be.greaterThan(0);
    expect(statusWhileRunning!.units.find((u) => u.state === 'running')!.where).to.match(/^pid \d+ on .+ \(w\d\)$/);
    expect(collectWhileRunning).to.contain('units not finished (shown as —)');
    // A replacement is started when units are waiting; when the other worker has already taken
    // the killed unit over (its lease's holder is dead) and none is left waiting, the kill is only reported.
    expect(r.stderr).to.match(new RegExp(`\\(pid ${killed!.pid}\\) was killed \\(SIGKILL\\)(; starting another| \\(log: )`));
    const tries = attempts(killed!.unit);
    expect(tries.filter((t) => t.event === 'start').length, JSON.stringify(tries)).to.equal(2);
    expect(tries[tries.length - 1]).to.include({ event: 'end', outcome: 'done' });
    const logs = fs
      .readdirSync(path.join(dir, 'workers'))
      .map((f) => fs.readFileSync(path.join(dir, 'workers', f), 'utf8'))
      .join('\n');
    expect(logs).to.match(/supervised continues from its checkpoint after epoch \d+/);
    expectSameNumbers(dir, reference);
  });

  it('after the whole run is killed: status says so, collect builds the partial table and names what is missing, --resume ends it with the same numbers', async () => {
    const out = tempDir();
    const r = await ssferWhile(poolArgs(out), async (child) => {
      const at = await until('the run folder', () => runDirIfAny(out));
      await until('a finished unit and one in training', () => unitDirs(at).some((u) => fs.existsSync(path.join(u, 'metrics.json'))) && unitInTraining(at));
      // kill -9 of ssfer run (first: it would replace its workers), then of every worker of the run
      // (found by its command line: one between two units holds no unit's lease).
      process.kill(child.pid, 'SIGKILL');
      for (const pid of workersOf(at)) process.kill(pid, 'SIGKILL');
    });
    expect(r.status).to.equal(null);
    const dir = runDir(out);
    const status = ssfer(['status', dir]);
    expect(status.status, status.stderr).to.equal(0);
    expect(status.stdout, status.stdout).to.contain('run: killed (run.json says running, but no process runs it');
    expect(status.stdout).to.match(/units: 4 \(4 cells\): [1-3] done · 0 running · 0 failed · [1-3] waiting/);
    expect(status.stdout).to.contain('killed while running');
    const collect = ssfer(['collect', dir, '--json']);
    expect(collect.status, collect.stderr).to.equal(0);
    const partial = JSON.parse(collect.stdout) as { cells: { status: string; ours: number | null }[] };
    expect(partial.cells.filter((c) => c.status === 'done').length).to.be.within(1, 3);
    expect(partial.cells.filter((c) => c.status !== 'done').every((c) => c.ours === null)).to.equal(true);
    expect(collect.stderr).to.match(/[1-3] of 4 units not finished \(shown as —\):\n {2}waiting \([1-3]\): /);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'table.json'), 'utf8')).cells).to.deep.equal(partial.cells);

    const resumed = ssfer(poolArgs(out, ['--resume']));
    expect(resumed.status, resumed.stderr).to.equal(0);
    expectSameNumbers(dir, reference);
    const finalStatus = ssfer(['status', dir, '--json']);
    expect(JSON.parse(finalStatus.stdout)).to.deep.include({ status: 'finished', orphaned: false, counts: { done: 4, running: 0, failed: 0, waiting: 0 } });
  });

  it('stops every worker on SIGTERM (what SLURM and container runtimes send), like Ctrl-C: checkpoints kept, exit 143, resumable', async () => {
    const out = tempDir();
    let pid = 0;
    let training = '';
    const r = await ssferWhile(poolArgs(out), async (child) => {
      await until('the run folder', () => runDirIfAny(out));
      const held = await until('a unit in its supervised stage', () => unitInTraining(runDir(out)));
      pid = held.pid;
      training = held.unit;
      process.kill(child.pid, 'SIGTERM');
    });
    expect(r.status, r.stderr).to.equal(143);
    expect(r.stderr)
      .to.contain('ssfer: SIGTERM: stopping after the current step')
      .and.match(/Continue with: ssfer run .* --resume /);
    const dir = runDir(out);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'))).to.include({ status: 'interrupted', signal: 'SIGTERM' });
    expect(processAlive(pid), 'the worker ended').to.equal(false);
    const stopped = unitDirs(dir).filter((u) => attempts(u).some((a) => a.outcome === 'interrupted'));
    // The unit seen training stopped and kept its checkpoints (the other worker's unit may have been
    // stopped before its first epoch ended, with none yet).
    expect(stopped, 'a worker stopped its unit on SIGTERM and recorded it').to.include(training);
    expect(fs.existsSync(path.join(training, 'checkpoints', 'supervised.ckpt')), training).to.equal(true);
    const resumed = ssfer(poolArgs(out, ['--resume']));
    expect(resumed.status, resumed.stderr).to.equal(0);
    expectSameNumbers(dir, reference);
  });

  it('refuses --detach and --profile for the process pool, before a results folder is made', () => {
    const out = tempDir();
    const d = ssfer(['run', fourCells, '--out', out, '--launcher', 'processes', '--detach']);
    expect(d.status).to.equal(2);
    expect(d.stderr).to.contain('--detach: the processes launcher trains while ssfer run waits');
    const p = ssfer(['run', fourCells, '--out', out, '--launcher', 'processes', '--profile']);
    expect(p.status).to.equal(2);
    expect(p.stderr).to.contain('--profile times the process that trains');
    const w = ssfer(['run', fourCells, '--out', out, '--launcher', 'processes', '--set', 'launcher.workers=0']);
    expect(w.status).to.equal(2);
    expect(w.stderr).to.match(/<--set launcher.workers=0>:1:\d+: launcher.workers: /);
    expect(fs.readdirSync(out)).to.deep.equal([]);
  });
});
