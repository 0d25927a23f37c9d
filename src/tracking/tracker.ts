import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { CellAxis, CellInfo, CellResult, CellRun, CellSummaryInfo, DatasetInput, RunInfo, RunStatus, SharedStage, Tracker } from '../contracts/tracker.ts';
import { LIMITS, MlflowClient, MlflowError, safeUri, splitBatch, type DatasetMlflow, type KeyValue, type Metric } from './client.ts';
import {
  appendLine,
  clip,
  findOutboxes,
  LONG_PARAMS_FILE,
  mlflowKey,
  OUTBOX,
  readOutbox,
  Sender,
  settingsParams,
  workerOutbox,
  type Op,
  type RunRef,
  type Sent,
} from './outbox.ts';

export interface MlflowTrackerOptions {
  uri: string | null;
  experiment: string | null;
  every: number;
  env?: NodeJS.ProcessEnv;
  /** Where notes go (default stderr). */
  log?: (line: string) => void;
  /** Quick retries of one call inside the client (default 2). */
  retries?: number;
  /** The first wait before a paused tracker tries the server again, doubled per failure up to maxBackoffMs (default 5 s and 2 min). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Log each finished seed's model as an MLflow Model on the seed's run (default true). */
  logModels?: boolean;
  /**
   * Register a model under this name at the end of the run: of the cell with the best mean test
   * accuracy over its seeds, the model of its seed 0 (its first seed this session trained, when a
   * resumed run kept seed 0); null: no registration.
   */
  register?: string | null;
  /** The Python version the models' environment files name (default 3.10). */
  pythonVersion?: string;
  /** `mlflow.user` (default: the user this process runs as). */
  user?: string;
}

/** The name the metrics of a shared stage go under, and its runs are called by. */
const STAGE_TITLES: Readonly<Record<string, string>> = { pretrain: 'pre-training' };
/** Tags ssfer sets itself: a grid axis of the same name is tagged `grid.<axis>` instead. */
const OWN_TAGS = new Set([
  'recipe',
  'title',
  'scale',
  'seed',
  'seeds',
  'seed_index',
  'backend',
  'results_dir',
  'ssfer_kind',
  'ssfer_ref',
  'git_commit',
  'cell',
  'stage',
  'stage_key',
]);
/** The model's name inside its run (`runs:/<run>/model`). */
const MODEL_NAME = 'model';

interface Pending {
  readonly id: string;
  readonly op: Op;
  /** Sent before without an answer: its effect may be on the server already. */
  failed: boolean;
}

interface SharedRun {
  readonly ref: string;
  readonly stage: string;
  created: boolean;
  ended: boolean;
  /** The seed runs tagged with it. */
  readonly linked: Set<string>;
}

/** A seed's run: its ref and what startCell was told. */
interface SeedRunOf {
  readonly ref: string;
  readonly info: CellInfo;
}

/** A model logged on a seed's run this session (by this process, or by a worker of its launch). */
interface LoggedModel {
  readonly cell: string;
  readonly seedIndex: number;
  readonly ref: string;
  readonly accuracy: number;
  readonly dataset: string;
  /** Logged by another process of the launch (in its own outbox). */
  readonly elsewhere?: boolean;
}

/** What share() hands a launcher's workers (launch.json), and join() takes. */
interface Shared {
  /** The session whose refs name the run, its cells' runs and its shared stages' runs. */
  readonly session: string;
  readonly experiment: string;
  readonly commit: string | null;
  /** The server's ids of the run and the cells' runs, where known when they were shared. */
  readonly runs: Record<string, RunRef>;
  /** The cells whose runs the sharing process made, and their names. */
  readonly cells: Record<string, string>;
}

/** Where the processes of one launch claim what only one of them may do (create or end a shared stage's run). */
const CLAIMS = 'mlflow-claims';

/**
 * One MLflow experiment per recipe, one parent run per `ssfer run` (the table's summary figures),
 * under it one nested run per cell (its settings and its figures over the seeds: mean, std, 95 %
 * interval, paired difference) with one nested run per seed below it (the seed, training metrics,
 * test accuracy, health, data, files and model), and one nested run per shared stage of a seed
 * (the pre-training the cells' same seed uses). Every call is written to the outbox first and
 * then sent in order. When the server cannot be reached, training goes on: the calls
 * wait, the tracker tries again after 5 s, 10 s, … up to every 2 minutes, and sends the backlog
 * by itself when the server answers again; what is still unsent at the end `ssfer sync` sends.
 * Each call is acknowledged in the outbox once sent, so nothing is sent twice.
 *
 * With a launcher's workers the structure is the same: `ssfer run` makes the parent and the cells'
 * runs (share) and hands their refs to the workers (launch.json); each worker (join) writes its own
 * outbox, `mlflow-outbox.<host>-<pid>.jsonl`, with its own retries and backlog, and makes the seed
 * runs of the units it trains under their cells' runs. A shared stage's run has one ref in the
 * whole launch; the process that first needs it (the one computing the pre-training under its
 * lease, or the first to finish a seed on a cached one) creates it, and the first finished seed
 * that used it ends it: each of these is claimed by creating a file in `mlflow-claims/` of the run
 * folder exclusively, so no two processes do it. A run another process made is found on the
 * server by its `ssfer_ref` tag. The process that finishes the run summarizes the cells, ends what
 * is left open and registers the best model, whichever worker logged it.
 */
export class MlflowTracker implements Tracker {
  readonly name = 'mlflow';
  readonly every: number;
  readonly logsModels: boolean;
  private readonly log: (line: string) => void;
  private readonly uri: string | null;
  private readonly user: string;
  private sender: Sender | null = null;
  private outbox = '';
  /** This process's session: its outbox's call ids. */
  private session = '';
  /** The session whose refs name the run, its cells' and shared stages' runs: this tracker's own, or the launcher's in a worker. */
  private refSession = '';
  /** Part of a launch whose seeds several processes train (after share or join): one-time actions are claimed in the run folder. */
  private multi = false;
  private experiment = '';
  private run: RunInfo | null = null;
  private n = 0;

  private readonly queue: Pending[] = [];
  private pumping: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff: number;
  /** Why sending waits for the server, while it waits. */
  private paused: string | null = null;
  /** Why nothing more is sent in this run (no URI, a refused run creation, no permission). */
  private stopped: string | null = null;
  private waitingSince = 0;
  private idle: (() => void)[] = [];

  private buffers = new Map<string, Metric[]>();
  private buffered = 0;
  private lastFlush = Date.now();
  /** The cells whose own run this session created, by cell id: its ref and its name. */
  private cellRuns = new Map<string, { ref: string; name: string }>();
  /** The seed runs this session created, by seedRef. */
  private seedRuns = new Map<string, SeedRunOf>();
  private shared = new Map<string, SharedRun>();
  private names = new Set<string>();
  private models: LoggedModel[] = [];
  /** Each summarized cell's mean test accuracy over its seeds and how many finished (absent: not every seed finished). */
  private means = new Map<string, { mean: number; seeds: number }>();

  constructor(private readonly opts: MlflowTrackerOptions) {
    this.every = opts.every;
    this.logsModels = opts.logModels ?? true;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const env = opts.env ?? process.env;
    this.uri = opts.uri ?? env.MLFLOW_TRACKING_URI ?? null;
    this.user = opts.user ?? userName(env);
    this.backoff = opts.backoffMs ?? 5000;
  }

  // ── sending ────────────────────────────────────────────────────────────────

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.stop((err as Error).message);
    }
  }

  private get syncHint(): string {
    return `ssfer sync ${path.dirname(this.outbox)}${this.uri ? '' : ' --tracking-uri URI'}`;
  }

  /** Nothing more is sent in this run; `ssfer sync` sends the rest. */
  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.clearTimer();
    this.log(`ssfer: MLflow tracking stopped: ${reason}. Training goes on; every call is kept in ${this.outbox} — send it later with: ${this.syncHint}`);
    this.wake();
  }

  /** The server did not answer: try again later, waiting longer each time. */
  private pause(reason: string): void {
    if (!this.paused) {
      this.waitingSince = Date.now();
      this.log(
        `ssfer: MLflow tracking paused: ${reason}. Training goes on; every call is kept in ${this.outbox} and sent when the server answers again (next try in ${Math.round(this.backoff / 1000)} s)`,
      );
    }
    this.paused = reason;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, this.backoff);
    this.retryTimer.unref();
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 120_000);
    this.wake();
  }

  private clearTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private enqueue(op: Op): void {
    const id = `${this.session}:${++this.n}`;
    try {
      appendLine(this.outbox, { type: 'op', id, ...op });
    } catch (err) {
      this.log(`ssfer: cannot write the MLflow outbox ${this.outbox}: ${(err as Error).message}`);
      return;
    }
    this.queue.push({ id, op, failed: false });
    this.kick();
  }

  private kick(): void {
    if (this.stopped || !this.sender || this.pumping || this.retryTimer || this.queue.length === 0) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      this.wake();
    });
  }

  private async pump(): Promise<void> {
    const sender = this.sender!;
    while (this.queue.length > 0 && !this.stopped) {
      const head = this.queue[0]!;
      let out: Sent;
      try {
        out = await sender.send(head.op, head.failed);
      } catch (err) {
        head.failed = true;
        const e = err as Error;
        if (e instanceof MlflowError && e.retryable) return this.pause(e.message);
        if (head.op.op !== 'run' && e instanceof MlflowError && (e.status === 400 || e.status === 413)) {
          // The server refuses this call as it is: sending it again would not help.
          this.log(`ssfer: MLflow refused a call (${head.op.op} of ${head.op.ref}) and it is left out: ${e.message}`);
          this.acknowledge(head, { skipped: e.message });
          continue;
        }
        return this.stop(e.message);
      }
      this.acknowledge(head, out);
      if (this.paused) {
        this.log(`ssfer: MLflow: the server answers again after ${Math.round((Date.now() - this.waitingSince) / 1000)} s; sending the calls that waited`);
        this.paused = null;
        this.backoff = this.opts.backoffMs ?? 5000;
      }
      this.sent(head.op, out);
    }
  }

  private acknowledge(head: Pending, out: Sent): void {
    appendLine(this.outbox, { type: 'ack', id: head.id, ...out });
    this.queue.shift();
  }

  /** Says what a call made that a user looks for. */
  private sent(op: Op, out: Sent): void {
    if (op.op === 'run' && op.parent === null && out.result && this.uri)
      this.log(`ssfer: MLflow run ${out.result.run_id} in experiment '${this.experiment}' at ${safeUri(this.uri)}`);
    if (op.op === 'register' && out.version) this.log(`ssfer: MLflow: registered the model of ${op.description} as '${op.name}' version ${out.version}`);
    if (op.op === 'register' && out.skipped) this.log(`ssfer: MLflow: ${out.skipped}`);
  }

  private wake(): void {
    if (this.pumping && !this.paused && !this.stopped) return;
    for (const w of this.idle.splice(0)) w();
  }

  /** Resolves when every call so far is sent, or sending waits for the server. */
  private settled(): Promise<void> {
    if (!this.pumping || this.paused || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  // ── what is logged ─────────────────────────────────────────────────────────

  private batch(ref: string, b: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): void {
    for (const part of splitBatch(b)) this.enqueue({ op: 'batch', ref, ...part });
  }

  private flush(): void {
    for (const [ref, metrics] of this.buffers) if (metrics.length) this.batch(ref, { metrics });
    this.buffers.clear();
    this.buffered = 0;
    this.lastFlush = Date.now();
  }

  private get runRef(): string {
    return `${this.refSession}:run`;
  }

  /** Opens this process's outbox (its session line first) and the sender to the server. */
  private open(outbox: string, experiment: string, joined?: { session: string; runs: Record<string, RunRef> }): void {
    this.outbox = outbox;
    this.session = randomUUID();
    this.refSession = joined?.session ?? this.session;
    this.experiment = experiment;
    appendLine(this.outbox, {
      type: 'session',
      session: this.session,
      uri: this.uri ? safeUri(this.uri) : null,
      experiment: this.experiment,
      time: Date.now(),
      ...(joined ? { joined } : {}),
    });
    if (!this.uri) this.stop('no tracking URI (set tracking.uri, --tracking-uri or MLFLOW_TRACKING_URI)');
    else {
      try {
        this.sender = new Sender(new MlflowClient({ uri: this.uri, env: this.opts.env, retries: this.opts.retries ?? 2 }));
        this.sender.experiment = experiment;
        for (const [ref, r] of Object.entries(joined?.runs ?? {})) this.sender.runs.set(ref, r);
      } catch (err) {
        this.stop((err as Error).message);
      }
    }
  }

  /** Creates run `ref` named `name` under `parent` (null: a top-level run), tagged with its name, its source and `tags`. */
  private openRun(ref: string, name: string, parent: string | null, tags: KeyValue[]): void {
    this.enqueue({
      op: 'run',
      ref,
      experiment: this.experiment,
      name,
      parent,
      start_time: Date.now(),
      tags: [{ key: 'mlflow.runName', value: name }, ...this.sourceTags(), ...tags],
    });
  }

  /** Tags every run of this tracker carries: who ran it, from which file and commit. */
  private sourceTags(): KeyValue[] {
    const run = this.run!;
    return [
      { key: 'mlflow.user', value: this.user },
      { key: 'mlflow.source.name', value: run.file },
      { key: 'mlflow.source.type', value: 'LOCAL' },
      ...(run.commit ? [{ key: 'mlflow.source.git.commit', value: run.commit }] : []),
    ];
  }

  /** A run name not yet taken in this parent run. */
  private uniqueName(name: string, id: string): string {
    const unique = this.names.has(name) ? `${name} (${id})` : name;
    this.names.add(unique);
    return clip(unique, LIMITS.tagValue);
  }

  async startRun(run: RunInfo): Promise<void> {
    this.guard(() => {
      this.run = run;
      this.open(path.join(run.dir, OUTBOX), this.opts.experiment ?? run.recipe);
      const name = `${run.recipe} ${path.basename(run.dir)}`;
      this.openRun(this.runRef, name, null, [
        ...(run.description?.trim() ? [{ key: 'mlflow.note.content', value: clip(run.description.trim(), LIMITS.tagValue) }] : []),
        { key: 'recipe', value: run.recipe },
        { key: 'title', value: clip(run.title, LIMITS.tagValue) },
        { key: 'scale', value: run.scale },
        { key: 'seed', value: String(run.seed) },
        { key: 'seeds', value: String(run.seeds) },
        { key: 'backend', value: run.backend },
        { key: 'results_dir', value: run.dir },
        { key: 'ssfer_kind', value: 'run' },
        ...(run.commit ? [{ key: 'git_commit', value: run.commit }] : []),
      ]);
      // The parent's params: the settings every cell shares (but the seed, as a cell's params).
      const common = commonParams(run.cells ?? []);
      if (common.length) this.batch(this.runRef, { params: common });
    });
    await this.settled();
  }

  /**
   * Makes the cells' runs now (a launcher's workers log their seeds under them) and returns what a
   * worker needs to join: the session that names the runs, the experiment, the cells' run names and
   * the server's ids of the run and the cells' runs (none while the server cannot be reached: a
   * worker then finds them by their ssfer_ref tag, and ssfer sync sends the run's outbox first).
   */
  async share(cells: readonly CellSummaryInfo[]): Promise<unknown> {
    this.guard(() => {
      this.multi = true;
      for (const c of cells) this.cellRun(c);
    });
    await this.settled();
    const runs: Record<string, RunRef> = {};
    for (const ref of [this.runRef, ...cells.map((c) => this.cellRef(c.id))]) {
      const r = this.sender?.runs.get(ref);
      if (r) runs[ref] = r;
    }
    const names: Record<string, string> = {};
    for (const c of cells) {
      const made = this.cellRuns.get(c.id);
      if (made) names[c.id] = made.name;
    }
    const shared: Shared = { session: this.refSession, experiment: this.experiment, commit: this.run?.commit ?? null, runs, cells: names };
    return shared;
  }

  /**
   * A worker, or the process that finishes a detached run: logs under the run the launcher's
   * tracker shared, in an outbox of its own (`mlflow-outbox.<worker>.jsonl`).
   */
  async join(run: RunInfo, shared: unknown, worker: string): Promise<void> {
    const s = shared as Partial<Shared> | null;
    if (!s || typeof s.session !== 'string' || typeof s.experiment !== 'string') {
      this.stopped = 'no run to join';
      this.log(`ssfer: MLflow: ${run.dir} has no MLflow run to join (launch.json); this process records nothing in MLflow`);
      return;
    }
    this.guard(() => {
      this.run = { ...run, commit: run.commit ?? s.commit ?? null };
      this.multi = true;
      this.open(workerOutbox(run.dir, worker), s.experiment!, { session: s.session!, runs: s.runs ?? {} });
      for (const [id, name] of Object.entries(s.cells ?? {})) {
        this.cellRuns.set(id, { ref: this.cellRef(id), name });
        this.names.add(name);
      }
    });
    await this.settled();
  }

  private cellRef(id: string): string {
    return `${this.refSession}:cell:${id}`;
  }
  private seedRef(run: CellRun): string {
    return `${this.refSession}:cell:${run.id}:seed:${run.seedIndex}`;
  }

  /** A claim file of this launch in the run folder (see claim). */
  private claimFile(stage: string, key: string, what: 'created' | 'ended'): string {
    return path.join(this.run!.dir, CLAIMS, this.refSession, `${stage}.${key}.${what}`);
  }

  /**
   * The cell's own run, made once per session and named from its grid labels, with the axes as
   * tags: its params are the cell's own settings but the seed (each seed's run has its own), so
   * cells compare by their settings and, once summarizeCell ran, by their figures over the seeds.
   */
  private cellRun(cell: CellSummaryInfo): { ref: string; name: string } {
    const made = this.cellRuns.get(cell.id);
    if (made) return made;
    const ref = this.cellRef(cell.id);
    const grid = cell.grid ?? [];
    const rows = grid.filter((a) => a.side === 'row').map((a) => a.label);
    const columns = grid.filter((a) => a.side === 'column').map((a) => a.label);
    const readable = [rows.join(' '), columns.join(' ')].filter(Boolean).join(' · ');
    const name = this.uniqueName(readable || cell.id, cell.id);
    const run = { ref, name };
    this.cellRuns.set(cell.id, run);
    this.openRun(ref, name, this.runRef, [
      { key: 'cell', value: clip(cell.id, LIMITS.tagValue) },
      { key: 'ssfer_kind', value: 'cell' },
      ...(typeof cell.config.seeds === 'number' ? [{ key: 'seeds', value: String(cell.config.seeds) }] : []),
      ...axisTags(grid),
    ]);
    const { params, long } = cellParams(cell.config);
    this.batch(ref, { params });
    if (Object.keys(long).length) this.enqueue({ op: 'artifact', ref, name: LONG_PARAMS_FILE, text: `${JSON.stringify(long, null, 2)}\n` });
    return run;
  }

  async startCell(cell: CellInfo): Promise<void> {
    this.guard(() => {
      this.flush();
      const parent = this.cellRun(cell);
      const ref = this.seedRef(cell);
      this.seedRuns.set(ref, { ref, info: cell });
      const seed = String(cell.config.seed);
      const name = clip(`${parent.name} · seed ${cell.seedIndex}`, LIMITS.tagValue);
      this.openRun(ref, name, parent.ref, [
        { key: 'cell', value: clip(cell.id, LIMITS.tagValue) },
        { key: 'seed', value: seed },
        { key: 'seed_index', value: String(cell.seedIndex) },
        { key: 'ssfer_kind', value: 'seed' },
        ...axisTags(cell.grid ?? []),
      ]);
      // The seed run's one param: the seed (its cell's run has the settings).
      this.batch(ref, { params: [{ key: 'seed', value: seed }] });
      this.enqueue({ op: 'artifact', ref, name: 'config.json', text: `${JSON.stringify(cell.config, null, 2)}\n` });
      // A shared stage an earlier cell's same seed already made (here, or another process of the launch): link this seed to its run.
      for (const [stage, s] of Object.entries(cell.shared ?? {})) if (this.sharedMade(stage, s.key)) this.link(ref, stage, this.sharedRunOf(stage, s.key));
    });
  }

  /** What this process knows of a shared stage's run (its ref is the launch's, whoever creates it). */
  private sharedRunOf(stage: string, key: string): SharedRun {
    let run = this.shared.get(key);
    if (!run) this.shared.set(key, (run = { ref: `${this.refSession}:stage:${stage}:${key}`, stage, created: false, ended: false, linked: new Set() }));
    return run;
  }

  /** Whether a shared stage's run was made, by this process or (with a launcher's workers) another of the launch. */
  private sharedMade(stage: string, key: string): boolean {
    const run = this.sharedRunOf(stage, key);
    if (!run.created && this.multi && fs.existsSync(this.claimFile(stage, key, 'created'))) run.created = true;
    return run.created;
  }

  /** The run of a shared stage of one seed, created on first use (once in the launch), and the seed run linked to it. */
  private sharedRun(seedRef: string, stage: string, s: SharedStage): SharedRun {
    const { info } = this.seedRuns.get(seedRef)!;
    const run = this.sharedRunOf(stage, s.key);
    // With a launcher's workers, the process that claims it first creates it; the others find it on the server by its ref.
    if (!run.created && (!this.multi || claim(this.claimFile(stage, s.key, 'created'), { ref: run.ref }))) {
      const several = typeof info.config.seeds === 'number' && info.config.seeds > 1;
      const name = this.uniqueName(`${STAGE_TITLES[stage] ?? stage} ${s.key.slice(0, 8)}${several ? ` · seed ${info.seedIndex}` : ''}`, s.key);
      this.openRun(run.ref, name, this.runRef, [
        { key: 'ssfer_kind', value: 'stage' },
        { key: 'stage', value: stage },
        { key: 'stage_key', value: s.key },
        { key: 'seed', value: String(info.config.seed) },
        { key: 'seed_index', value: String(info.seedIndex) },
      ]);
      this.batch(run.ref, { params: settingsParams(s.config).params });
    }
    run.created = true;
    this.link(seedRef, stage, run);
    return run;
  }

  /** Tags a seed's run with the shared stage it used: the stage's key and its run. */
  private link(seedRef: string, stage: string, run: SharedRun): void {
    if (run.linked.has(seedRef)) return;
    run.linked.add(seedRef);
    const { info } = this.seedRuns.get(seedRef)!;
    this.batch(seedRef, { tags: [{ key: mlflowKey(`${stage}_key`), value: info.shared![stage]!.key }] });
    this.enqueue({ op: 'link', ref: seedRef, key: mlflowKey(`${stage}_run_id`), target: run.ref });
  }

  logMetrics(run: CellRun, metrics: Record<string, number>, step: number): void {
    this.guard(() => {
      const seedRef = this.seedRef(run);
      const seed = this.seedRuns.get(seedRef);
      if (!seed) return;
      const timestamp = Date.now();
      for (const [k, v] of Object.entries(metrics)) {
        if (!Number.isFinite(v)) continue;
        const stage = k.split('/')[0]!;
        const shared = seed.info.shared?.[stage];
        const ref = shared ? this.sharedRun(seedRef, stage, shared).ref : seedRef;
        let buffer = this.buffers.get(ref);
        if (!buffer) this.buffers.set(ref, (buffer = []));
        buffer.push({ key: mlflowKey(k), value: v, timestamp, step });
        this.buffered++;
      }
      if (this.buffered >= LIMITS.metrics || timestamp - this.lastFlush > 5000) this.flush();
    });
  }

  async endCell(cellRun: CellRun, result: CellResult): Promise<void> {
    this.guard(() => {
      this.flush();
      const seed = this.seedRuns.get(this.seedRef(cellRun));
      if (!seed) return;
      const { ref, info } = seed;
      const timestamp = Date.now();
      const finite = Object.entries(result.metrics).filter(([, v]) => Number.isFinite(v));
      // A shared stage's figures go to its run too: the first finished seed run that used it ends it.
      for (const [stage, s] of Object.entries(info.shared ?? {})) {
        const figures = finite.filter(([k]) => k.startsWith(`health.${stage}_`));
        if (!this.sharedMade(stage, s.key) && figures.length === 0) continue; // the cell had no such stage
        const run = this.sharedRun(ref, stage, s);
        if (run.ended || result.status !== 'FINISHED') continue;
        run.ended = true;
        if (this.multi && !claim(this.claimFile(stage, s.key, 'ended'), { ref: run.ref })) continue; // another process ended it
        if (figures.length)
          this.batch(run.ref, { metrics: figures.map(([k, v]) => ({ key: mlflowKey(k.slice('health.'.length)), value: v, timestamp, step: 0 })) });
        const summary = result.stages?.[stage];
        if (summary) this.batch(run.ref, { tags: [{ key: 'mlflow.note.content', value: clip(summary, LIMITS.tagValue) }] });
        this.enqueue({ op: 'status', ref: run.ref, status: 'FINISHED', end_time: timestamp });
      }
      if (finite.length) this.batch(ref, { metrics: finite.map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step: 0 })) });
      if (result.stages)
        this.batch(ref, {
          tags: Object.entries(result.stages).map(([stage, text]) => ({ key: mlflowKey(`stage.${stage}`), value: clip(text, LIMITS.tagValue) })),
        });
      if (result.inputs?.length) this.enqueue({ op: 'inputs', ref, datasets: result.inputs.map(datasetInput) });
      for (const file of result.artifacts) this.enqueue({ op: 'artifact', ref, name: path.basename(file), file });
      if (result.model && this.logsModels && result.status === 'FINISHED') this.logModel(info, ref, result, timestamp);
      this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
    });
    await this.settled();
  }

  async summarizeCell(cell: CellSummaryInfo, result: { metrics: Record<string, number>; status: RunStatus }): Promise<void> {
    this.guard(() => {
      this.flush();
      const { ref } = this.cellRun(cell);
      const timestamp = Date.now();
      const finite = Object.entries(result.metrics).filter(([, v]) => Number.isFinite(v));
      if (finite.length) this.batch(ref, { metrics: finite.map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step: 0 })) });
      const mean = result.metrics.test_accuracy;
      if (result.status === 'FINISHED' && mean !== undefined && Number.isFinite(mean))
        this.means.set(cell.id, { mean, seeds: result.metrics.seeds_finished ?? 1 });
      this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
    });
    await this.settled();
  }

  private logModel(cell: CellInfo, ref: string, result: CellResult, timestamp: number): void {
    const model = result.model!;
    const accuracy = result.metrics.test_accuracy;
    const dataset = result.inputs?.[0];
    this.enqueue({
      op: 'model',
      ref,
      name: MODEL_NAME,
      onnx: model.onnx,
      time: timestamp,
      spec: {
        imageSize: model.imageSize,
        channels: model.channels,
        classes: model.classes.length,
        metadata: model.metadata,
        pythonVersion: this.opts.pythonVersion ?? '3.10',
      },
      tags: [
        ...this.sourceTags(),
        { key: 'cell', value: clip(cell.id, LIMITS.tagValue) },
        { key: 'seed', value: String(cell.config.seed) },
        { key: 'seed_index', value: String(cell.seedIndex) },
      ],
      params: [],
      metrics:
        accuracy !== undefined && Number.isFinite(accuracy)
          ? [
              {
                key: 'test_accuracy',
                value: accuracy,
                timestamp,
                step: 0,
                ...(dataset ? { dataset_name: dataset.name, dataset_digest: digestOf(dataset) } : {}),
              },
            ]
          : [],
    });
    if (accuracy !== undefined && Number.isFinite(accuracy))
      this.models.push({ cell: cell.id, seedIndex: cell.seedIndex, ref, accuracy, dataset: dataset?.name ?? '' });
  }

  /**
   * Registers a model of the run as a new version of `name`: of the cell with the best mean test
   * accuracy over its seeds (the table's figure, which one lucky seed does not decide; the first
   * such cell on a tie), the model of its seed 0, or of its first seed whose model this session
   * logged. Cells that did not finish every seed are not candidates. When that cell's models were
   * all logged by an earlier run of the results folder, or none was logged, it says so and
   * registers nothing rather than a worse cell's model.
   */
  private register(name: string): void {
    const models = [...this.models, ...(this.multi ? this.launchModels() : [])];
    let best: { cell: string; mean: number; seeds: number } | null = null;
    for (const [cell, m] of this.means) if (!best || m.mean > best.mean) best = { cell, ...m };
    const not = `ssfer: MLflow: no model is registered as '${name}'`;
    if (!best) {
      this.log(`${not}: no cell finished all its seeds`);
      return;
    }
    const mine = models.filter((x) => x.cell === best.cell);
    if (mine.length === 0) {
      this.log(
        models.length === 0
          ? `${not}: no seed's model was logged in this run`
          : `${not}: the best cell, ${best.cell}, finished its seeds in an earlier run of this results folder, whose MLflow runs hold its models`,
      );
      return;
    }
    const chosen = mine.reduce((a, b) => (b.seedIndex < a.seedIndex ? b : a));
    const pct = (a: number) => `${(100 * a).toFixed(2)} %`;
    const over = best.seeds > 1 ? `; the cell's mean over ${best.seeds} seeds ${pct(best.mean)}, the best of the run` : ', the best of the run';
    this.enqueue({
      op: 'register',
      ref: chosen.ref,
      name,
      model: MODEL_NAME,
      ...(chosen.elsewhere ? { elsewhere: true } : {}),
      description: `cell ${chosen.cell} seed ${chosen.seedIndex} of ${this.run!.recipe} (test accuracy ${pct(chosen.accuracy)}${chosen.dataset ? ` on ${chosen.dataset}` : ''}${over})`,
    });
  }

  /**
   * The models the other processes of this launch (a launcher's workers) logged, from their
   * outboxes in the run folder: a model op of a seed run of this launch that was not left out.
   */
  private launchModels(): LoggedModel[] {
    const prefix = `${this.refSession}:cell:`;
    const out: LoggedModel[] = [];
    for (const file of findOutboxes(this.run!.dir, 0)) {
      if (path.resolve(file) === path.resolve(this.outbox)) continue;
      const lines = readOutbox(file);
      const skipped = new Set(lines.flatMap((l) => (l.type === 'ack' && l.skipped ? [l.id] : [])));
      for (const l of lines) {
        if (l.type !== 'op' || l.op !== 'model' || skipped.has(l.id) || !l.ref.startsWith(prefix)) continue;
        const seed = /^(.*):seed:(\d+)$/.exec(l.ref.slice(prefix.length));
        const accuracy = l.metrics.find((m) => m.key === 'test_accuracy');
        if (!seed || !accuracy) continue;
        out.push({
          cell: seed[1]!,
          seedIndex: Number(seed[2]),
          ref: l.ref,
          accuracy: accuracy.value,
          dataset: accuracy.dataset_name ?? '',
          elsewhere: true,
        });
      }
    }
    return out;
  }

  /**
   * The shared stages' runs of this launch that were made and not ended (none of their seeds
   * finished): by this process, or with a launcher's workers by any of the launch's (their claims).
   */
  private openSharedRuns(): string[] {
    const open = [...this.shared.values()].filter((r) => r.created && !r.ended);
    for (const r of open) r.ended = true;
    if (!this.multi) return open.map((r) => r.ref);
    const dir = path.join(this.run!.dir, CLAIMS, this.refSession);
    const made = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.created')) : [];
    const refs: string[] = [];
    for (const file of made) {
      const [stage, key] = file.split('.');
      if (stage && key && claim(this.claimFile(stage, key, 'ended'), { ref: `${this.refSession}:stage:${stage}:${key}` }))
        refs.push(`${this.refSession}:stage:${stage}:${key}`);
    }
    return refs;
  }

  async endRun(result: { artifacts: readonly string[]; status: RunStatus; metrics?: Readonly<Record<string, number>> }): Promise<void> {
    this.guard(() => {
      this.flush();
      const timestamp = Date.now();
      for (const ref of this.openSharedRuns()) this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
      const metrics = Object.entries(result.metrics ?? {}).filter(([, v]) => Number.isFinite(v));
      if (metrics.length) this.batch(this.runRef, { metrics: metrics.map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step: 0 })) });
      if (this.opts.register) this.register(this.opts.register);
      for (const file of result.artifacts) this.enqueue({ op: 'artifact', ref: this.runRef, name: path.basename(file), file });
      this.enqueue({ op: 'status', ref: this.runRef, status: result.status, end_time: timestamp });
    });
    await this.lastTry();
  }

  /** A worker is done: what waited for the server gets one last try, and what is left is said. */
  async leave(): Promise<void> {
    this.guard(() => this.flush());
    await this.lastTry();
  }

  /** One last try now for what waited, rather than at the next timed one; then says what is left for ssfer sync. */
  private async lastTry(): Promise<void> {
    if (this.paused && !this.stopped) {
      this.clearTimer();
      this.kick();
    }
    await this.settled();
    this.clearTimer();
    if (this.queue.length > 0)
      this.log(
        `ssfer: MLflow: ${this.queue.length} call${this.queue.length === 1 ? ' was' : 's were'} not sent; run '${this.syncHint}' when the server is reachable`,
      );
  }
}

/**
 * Claims a one-time action among the processes of a launch (on one machine or the nodes of a
 * cluster, through the shared run folder): true for the one process that creates the file (it is
 * created exclusively); false when another process did already.
 */
function claim(file: string, about: Record<string, unknown>): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, `${JSON.stringify({ ...about, pid: process.pid, host: os.hostname(), time: new Date().toISOString() })}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** A cell's own settings as its run's params: its config but the seed (each seed's run has that). */
function cellParams(config: Record<string, unknown>): ReturnType<typeof settingsParams> {
  const { seed: _seed, ...settings } = config;
  return settingsParams(settings);
}

/** A cell's values on the grid's axes as tags (an axis named like one of ssfer's own tags as `grid.<axis>`). */
function axisTags(grid: readonly CellAxis[]): KeyValue[] {
  return grid.map((a) => ({ key: mlflowKey(OWN_TAGS.has(a.axis) ? `grid.${a.axis}` : a.axis), value: clip(a.value, LIMITS.tagValue) }));
}

/** The user this process runs as, as MLflow's Python client records it. */
function userName(env: NodeJS.ProcessEnv): string {
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME ?? env.USERNAME ?? 'unknown';
  }
}

/** Params with the same value in every cell (the parent's params). */
function commonParams(cells: readonly CellSummaryInfo[]): KeyValue[] {
  if (cells.length === 0) return [];
  const [first, ...rest] = cells.map((c) => new Map(cellParams(c.config).params.map((p) => [p.key, p.value])));
  return [...first!].filter(([k, v]) => rest.every((m) => m.get(k) === v)).map(([key, value]) => ({ key, value }));
}

/** MLflow stores a dataset digest of at most 36 characters. */
function digestOf(d: DatasetInput): string {
  return d.digest.slice(0, 36);
}

/** A dataset as MLflow's log-inputs takes it: a folder read from disk is a `local` source, a stand-in a `code` source. */
export function datasetInput(d: DatasetInput): { dataset: DatasetMlflow; tags: KeyValue[] } {
  const source =
    'folder' in d.source
      ? { source_type: 'local', source: JSON.stringify({ uri: d.source.folder }) }
      : { source_type: 'code', source: JSON.stringify({ tags: { 'mlflow.source.name': 'ssfer', 'ssfer.stand_in': d.source.standIn } }) };
  return {
    dataset: { name: d.name, digest: digestOf(d), ...source, profile: JSON.stringify(d.profile) },
    tags: [{ key: 'mlflow.data.context', value: d.context }],
  };
}
