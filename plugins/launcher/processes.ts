import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Launcher, LaunchResult, LaunchRun } from '../../src/contracts/launcher.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import { progressLine, RETRIES, since } from './internal/common.ts';

export default definePlugin({
  kind: 'launcher',
  name: 'processes',
  description:
    'worker processes on this machine, each taking the next unfinished unit (a seed of a cell); a worker that dies is replaced and its unit continues from its checkpoint',
  options: options({
    workers: nullable(Type.Integer({ minimum: 1, maximum: 1024 }), {
      default: 2,
      description: 'how many worker processes train at once; null: one per core of this machine',
    }),
    threads_per_worker: nullable(Type.Integer({ minimum: 1, maximum: 1024 }), {
      default: null,
      description: "threads of each worker's native kernels and OpenBLAS; null: this machine's cores divided by the workers (at least 1)",
    }),
    max_retries: RETRIES,
  }),
  create: (o) => {
    const workers = o.workers ?? os.availableParallelism();
    return new ProcessPool(workers, o.threads_per_worker ?? Math.max(1, Math.floor(os.availableParallelism() / workers)), o.max_retries);
  },
});

/** How often the pool looks at its workers and the units (ms). */
const POLL_MS = 1000;

class ProcessPool implements Launcher {
  readonly name = 'processes';
  readonly inProcess = false;
  readonly detachable = false;

  constructor(
    readonly workers: number,
    readonly threads: number,
    readonly maxRetries: number,
  ) {}

  async launch(run: LaunchRun): Promise<LaunchResult> {
    const logs = path.join(run.dir, 'workers');
    fs.mkdirSync(logs, { recursive: true });
    const live = new Map<string, ChildProcess>();
    const from = since(run.status());
    let next = 1;
    // Workers started to replace dead ones, at most as many as the retries of every unit allow.
    let replacements = 0;
    const budget = run.units.length * this.maxRetries + this.workers;
    let stopping = false;
    const start = () => {
      const name = `w${next++}`;
      const log = path.join(logs, `${name}.log`);
      const cmd = run.workerCommand({ threads: this.threads, name, log });
      const fd = fs.openSync(log, 'a');
      // Its own process group: a Ctrl-C in the terminal reaches ssfer run, which stops the workers once, with SIGTERM.
      const child = spawn(cmd.command, [...cmd.args], { env: { ...process.env, ...cmd.env }, stdio: ['ignore', fd, fd], detached: true });
      fs.closeSync(fd);
      live.set(name, child);
      child.on('exit', (code, signal) => {
        live.delete(name);
        if (stopping || code === 0) return;
        const waiting = run.status().filter((u) => u.state === 'waiting').length;
        const how = signal ? `was killed (${signal})` : `ended with status ${code}`;
        if (waiting && live.size < this.workers && replacements < budget) {
          replacements++;
          run.note(`ssfer: worker ${name} (pid ${child.pid}) ${how}; starting another for the ${waiting} unit${waiting === 1 ? '' : 's'} left (log: ${log})`);
          start();
        } else if (code !== 1) run.note(`ssfer: worker ${name} (pid ${child.pid}) ${how} (log: ${log})`);
      });
      child.on('error', (err) => run.note(`ssfer: worker ${name} could not start: ${err.message}`));
    };
    const todo = run.status().filter((u) => u.state === 'waiting').length;
    const n = Math.min(this.workers, Math.max(1, todo));
    run.note(
      `ssfer: ${n} worker process${n === 1 ? '' : 'es'} × ${this.threads} thread${this.threads === 1 ? '' : 's'} for ${todo} unit${todo === 1 ? '' : 's'}; their output: ${logs}`,
    );
    if (todo === 0) return { status: 'ended' };
    for (let i = 0; i < n; i++) start();
    while (live.size > 0) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (run.stopRequested() && !stopping) {
        stopping = true;
        for (const child of live.values()) child.kill('SIGTERM');
      }
      run.progress(progressLine(`processes (${live.size} worker${live.size === 1 ? '' : 's'})`, run.status(), from));
    }
    return { status: stopping ? 'interrupted' : 'ended' };
  }
}
