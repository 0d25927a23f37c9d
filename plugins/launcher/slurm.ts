import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Launcher, LaunchResult, LaunchRun, WorkerCommand } from '../../src/contracts/launcher.ts';
import { UsageError } from '../../src/core/errors.ts';
import { writeAtomic, writeJson } from '../../src/core/files.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type, type Static } from '../../src/core/schema.ts';
import { progressLine, RETRIES, since } from './internal/common.ts';

const slurmOptions = options({
  partition: nullable(Type.String({ minLength: 1 }), { default: null, description: "the partition (sbatch --partition); null: the cluster's default" }),
  time: nullable(Type.String({ pattern: '^[0-9:-]+$' }), {
    default: null,
    description:
      "each task's time limit (sbatch --time: minutes, HH:MM:SS, D-HH:MM…); at it SLURM sends SIGTERM, the task checkpoints and the unit is started again",
  }),
  cpus_per_task: Type.Integer({
    minimum: 1,
    maximum: 4096,
    default: 1,
    description: 'CPUs per task (sbatch --cpus-per-task); also the threads of its native kernels and OpenBLAS',
  }),
  gpus: Type.Unsafe<string | number | null>({
    type: ['string', 'integer', 'null'],
    minLength: 1,
    minimum: 1,
    default: null,
    description: "GPUs per task (sbatch --gpus-per-task: 1, 'a100:1'); null: none",
  }),
  mem: nullable(Type.String({ pattern: '^[0-9]+[KMGT]?$' }), {
    default: null,
    description: 'memory per task (sbatch --mem: 8G, 16000M); null: the partition default',
  }),
  sbatch: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: "further #SBATCH lines, each as sbatch takes it ('--account=fer', '--qos=short', '--constraint=avx2')",
  }),
  max_concurrent: nullable(Type.Integer({ minimum: 1 }), { default: null, description: 'at most this many tasks at once (the array’s %N); null: no limit' }),
  units_per_task: Type.Integer({
    minimum: 1,
    default: 1,
    description: 'units (seeds of cells) each array task trains one after another; a shard shares its pre-training and data in one process',
  }),
  requeue: Type.Boolean({ default: true, description: 'let SLURM requeue a task whose node failed or that was preempted (sbatch --requeue)' }),
  max_retries: RETRIES,
  poll_seconds: Type.Number({ minimum: 0.2, maximum: 3600, default: 10, description: 'how often ssfer run looks at the job while it follows it' }),
  job_name: nullable(Type.String({ pattern: '^[A-Za-z0-9_.=+-]+$' }), { default: null, description: 'the job name; null: ssfer-<recipe>' }),
});

type SlurmOptions = Static<typeof slurmOptions>;

export default definePlugin({
  kind: 'launcher',
  name: 'slurm',
  description:
    'one SLURM job array (sbatch --array) over the units (seeds of cells) into the same results folder; ssfer run follows it, or returns at once with --detach',
  options: slurmOptions,
  create: (o) => new SlurmLauncher(o),
});

/** Runs a SLURM command; its output, or a UsageError that says which command is missing. */
function slurm(command: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new UsageError(`the slurm launcher needs SLURM's ${command}, which is not installed here; run on a SLURM login node, or use --launcher processes`);
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A word as bash reads it back, in single quotes. */
function quote(w: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

interface Submission {
  readonly job: string;
  readonly round: number;
  readonly script: string;
  /** The units of each array task, by task index. */
  readonly tasks: readonly (readonly string[])[];
}

class SlurmLauncher implements Launcher {
  readonly name = 'slurm';
  readonly inProcess = false;
  readonly detachable = true;
  readonly maxRetries: number;

  constructor(readonly o: SlurmOptions) {
    this.maxRetries = o.max_retries;
  }

  /** The batch script of one array job: a task per shard; the worker is started again when it dies (kill -9, a crash). */
  script(run: LaunchRun, shards: readonly (readonly string[])[], round: number): string {
    const o = this.o;
    const dir = path.join(run.dir, 'slurm');
    const worker: WorkerCommand = run.workerCommand({ threads: o.cpus_per_task });
    const lines = [
      '#!/bin/bash',
      `#SBATCH --job-name=${o.job_name ?? `ssfer-${run.recipe}`.replace(/[^A-Za-z0-9_.=+-]/g, '_')}`,
      `#SBATCH --array=0-${shards.length - 1}${o.max_concurrent ? `%${o.max_concurrent}` : ''}`,
      `#SBATCH --output=${dir}/%A_%a.out`,
      '#SBATCH --open-mode=append',
      '#SBATCH --ntasks=1',
      `#SBATCH --cpus-per-task=${o.cpus_per_task}`,
      ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
      ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
      ...(o.mem ? [`#SBATCH --mem=${o.mem}`] : []),
      ...(o.gpus !== null ? [`#SBATCH --gpus-per-task=${String(o.gpus)}`] : []),
      o.requeue ? '#SBATCH --requeue' : '#SBATCH --no-requeue',
      ...o.sbatch.map((l) => `#SBATCH ${l}`),
      `# ssfer run, round ${round}: each array task trains its units of ${run.dir} (cells/<cell>/seed-<k>).`,
      'units=(',
      ...shards.map((s) => `  ${quote(s.join(','))}`),
      ')',
      ...Object.entries(worker.env).map(([k, v]) => `export ${k}=${quote(v)}`),
      `cd ${quote(process.cwd())} || exit 2`,
      `log=${quote(dir)}/"$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID".out`,
      // 0: done; 1: a unit failed for good; 2: bad input; 129/130/143: stopped by a signal (a time
      // limit, scancel): its checkpoints are kept and ssfer run starts the unit again.
      `for try in $(seq 0 ${o.max_retries}); do`,
      `  ${[worker.command, ...worker.args].map(quote).join(' ')} --units "\${units[$SLURM_ARRAY_TASK_ID]}" --log "$log"`,
      '  rc=$?',
      '  case $rc in 0|1|2|129|130|143) exit $rc ;; esac',
      '  echo "ssfer: the worker ended with status $rc (killed or crashed); starting it again" >&2',
      'done',
      'exit $rc',
      '',
    ];
    return lines.join('\n');
  }

  private submissions: Submission[] = [];

  private submit(run: LaunchRun, units: readonly string[]): Submission {
    const dir = path.join(run.dir, 'slurm');
    fs.mkdirSync(dir, { recursive: true });
    const shards: string[][] = [];
    for (let i = 0; i < units.length; i += this.o.units_per_task) shards.push(units.slice(i, i + this.o.units_per_task));
    const round = this.submissions.length + 1;
    const script = path.join(dir, `round-${round}.sh`);
    writeAtomic(script, this.script(run, shards, round));
    const r = slurm('sbatch', ['--parsable', script]);
    if (r.status !== 0) throw new Error(`sbatch ${script} failed (status ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
    const job = r.stdout.trim().split(';')[0]!;
    const submission = { job, round, script, tasks: shards };
    this.submissions.push(submission);
    const jobsFile = path.join(dir, 'jobs.json');
    writeJson(jobsFile, this.submissions);
    run.note(
      `ssfer: SLURM job ${job}: ${shards.length} task${shards.length === 1 ? '' : 's'} over ${units.length} unit${units.length === 1 ? '' : 's'} (${script}; output in ${dir})`,
    );
    return submission;
  }

  /**
   * The array tasks of our jobs that SLURM still holds (pending, running, requeued…), as
   * `job_task` → state; null when squeue could not say (the controller busy or restarting).
   */
  private queued(): Map<string, string> | null {
    const jobs = this.submissions.map((s) => s.job);
    const r = slurm('squeue', ['-h', '-r', '-o', '%i %T', '-j', jobs.join(',')]);
    const out = new Map<string, string>();
    if (r.status !== 0) {
      // squeue refuses job ids that have left the queue entirely; anything else is not an answer.
      if (/invalid job id/i.test(r.stderr)) return out;
      return null;
    }
    for (const line of r.stdout.split('\n')) {
      const [id, state] = line.trim().split(/\s+/);
      if (id && state) out.set(id, state);
    }
    return out;
  }

  async launch(run: LaunchRun): Promise<LaunchResult> {
    const from = since(run.status());
    const todo = run
      .status()
      .filter((u) => u.state === 'waiting')
      .map((u) => u.key);
    if (todo.length === 0) return { status: 'ended' };
    // Each unit's array task (the last one it was submitted to), and how often it was submitted.
    const taskOf = new Map<string, string>();
    const submitted = new Map<string, number>();
    const record = (s: Submission) =>
      s.tasks.forEach((units, i) => {
        for (const u of units) {
          taskOf.set(u, `${s.job}_${i}`);
          submitted.set(u, (submitted.get(u) ?? 0) + 1);
        }
      });
    const first = this.submit(run, todo);
    record(first);
    if (run.detach) {
      const finish = run.finishCommand();
      const r = slurm('sbatch', [
        '--parsable',
        `--dependency=afterany:${first.job}`,
        '--kill-on-invalid-dep=yes',
        `--job-name=${this.o.job_name ?? `ssfer-${run.recipe}`.replace(/[^A-Za-z0-9_.=+-]/g, '_')}-collect`,
        `--output=${path.join(run.dir, 'slurm', 'collect-%j.out')}`,
        ...(this.o.partition ? [`--partition=${this.o.partition}`] : []),
        ...this.o.sbatch,
        `--wrap=${[finish.command, ...finish.args].map(quote).join(' ')}`,
      ]);
      if (r.status !== 0) throw new Error(`sbatch of the collect job failed (status ${r.status}): ${r.stderr.trim()}`);
      run.note(
        `ssfer: SLURM job ${r.stdout.trim().split(';')[0]} builds the table after job ${first.job} (ssfer collect --finish); a task SLURM cancels is not submitted again while detached: ssfer run --resume submits what is left`,
      );
      return { status: 'detached' };
    }
    let cancelled = false;
    for (;;) {
      await new Promise((r) => setTimeout(r, this.o.poll_seconds * 1000));
      if (run.stopRequested() && !cancelled) {
        cancelled = true;
        // SLURM sends every task SIGTERM (the workers checkpoint and stop) and kills what is left after its KillWait.
        slurm(
          'scancel',
          this.submissions.map((s) => s.job),
        );
      }
      const queued = this.queued();
      if (!queued) continue; // no answer from SLURM this time: decide nothing
      const units = run.status();
      const jobs = this.submissions.map((s) => s.job).join(', ');
      const pending = [...queued.values()].filter((s) => s === 'PENDING').length;
      run.progress(progressLine(`slurm ${jobs}${pending ? ` (${pending} pending)` : ''}`, units, from));
      if (cancelled) {
        if (queued.size === 0) return { status: 'interrupted' };
        continue;
      }
      // A unit whose task left the queue without finishing it (cancelled, killed, out of time): once more, while retries last.
      const again = units.filter((u) => {
        if (u.state !== 'waiting') return false;
        const task = taskOf.get(u.key);
        return (!task || !queued.has(task)) && (submitted.get(u.key) ?? 0) < 1 + this.o.max_retries;
      });
      if (again.length) {
        for (const u of again) run.note(`ssfer: ${u.label}: its task ended without finishing it${u.error ? ` (${u.error})` : ''}; submitting it again`);
        record(
          this.submit(
            run,
            again.map((u) => u.key),
          ),
        );
        continue;
      }
      if (queued.size === 0) return { status: 'ended' };
    }
  }
}
