import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { CellInfo, CellRun, CellSummaryInfo, RunInfo, RunStatus, Tracker } from '../contracts/tracker.ts';
import { LIMITS, MlflowClient, safeUri, splitBatch, type KeyValue, type Metric } from './client.ts';
import { appendLine, clip, flattenParams, mlflowKey, OUTBOX, Sender, workerOutbox, type Op, type RunRef } from './outbox.ts';

export interface MlflowTrackerOptions {
  uri: string | null;
  experiment: string | null;
  every: number;
  env?: NodeJS.ProcessEnv;
  /** Where notes go (default stderr). */
  log?: (line: string) => void;
  retries?: number;
}

/**
 * One MLflow experiment per recipe, one parent run per `ssfer run`, one nested run per cell (its
 * figures over the seeds: mean, std, 95 % interval, paired difference) and under it one nested
 * run per seed (its config, training metrics, test accuracy, health and files).
 * Every call is written to the outbox first and then sent in order; when the server cannot be
 * reached the tracker stops sending (training goes on) and `ssfer sync` sends the rest later.
 */
export class MlflowTracker implements Tracker {
  readonly name = 'mlflow';
  readonly every: number;
  private readonly log: (line: string) => void;
  private readonly uri: string | null;
  private sender: Sender | null = null;
  private offline: string | null = null;
  private chain: Promise<void> = Promise.resolve();
  private outbox = '';
  private session = '';
  private experiment = '';
  private n = 0;
  private buffer: Metric[] = [];
  private bufferRef = '';
  private lastFlush = Date.now();
  /** The last step logged, by seed run. */
  private lastStep = new Map<string, number>();
  /** The cells whose own run this session created. */
  private cells = new Set<string>();
  private params = new Map<string, Map<string, string>>();
  private parentId: string | null = null;
  /** The session whose refs name the run and its cells' runs: this tracker's own, or (in a launcher's worker) the launcher's. */
  private refSession = '';
  /** A worker's tracker: the run and the cells' runs were made by the process that shared them. */
  private joined = false;

  constructor(private readonly opts: MlflowTrackerOptions) {
    this.every = opts.every;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    const env = opts.env ?? process.env;
    this.uri = opts.uri ?? env.MLFLOW_TRACKING_URI ?? null;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.goOffline((err as Error).message);
    }
  }

  private goOffline(reason: string): void {
    if (this.offline) return;
    this.offline = reason;
    this.log(
      `ssfer: MLflow tracking paused: ${reason}. Training goes on; every call is kept in ${this.outbox} — send it later with: ssfer sync ${path.dirname(this.outbox)}${this.uri ? '' : ' --tracking-uri URI'}`,
    );
  }

  private enqueue(op: Op): void {
    const id = `${this.session}:${++this.n}`;
    try {
      appendLine(this.outbox, { type: 'op', id, ...op });
    } catch (err) {
      this.log(`ssfer: cannot write the MLflow outbox ${this.outbox}: ${(err as Error).message}`);
      return;
    }
    this.chain = this.chain.then(async () => {
      if (this.offline || !this.sender) return;
      try {
        const out = await this.sender.send(op);
        if (op.op === 'run' && op.parent === null && out.result) this.parentId = out.result.run_id;
        appendLine(this.outbox, { type: 'ack', id, ...out });
      } catch (err) {
        this.goOffline((err as Error).message);
      }
    });
  }

  private batch(ref: string, b: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): void {
    for (const part of splitBatch(b)) this.enqueue({ op: 'batch', ref, ...part });
  }

  private flush(): void {
    if (this.buffer.length) this.batch(this.bufferRef, { metrics: this.buffer });
    this.buffer = [];
    this.lastFlush = Date.now();
  }

  private cellRef(id: string): string {
    return `${this.refSession}:cell:${id}`;
  }
  private seedRef(run: CellRun): string {
    return `${this.refSession}:cell:${run.id}:seed:${run.seedIndex}`;
  }

  /**
   * The cell's own run, made once per session: params are the cell's config but its seed (each
   * seed's run has its own), so cells compare by their settings and their figures over the seeds.
   */
  private cellRun(id: string, config: Record<string, unknown>): string {
    const ref = this.cellRef(id);
    if (this.cells.has(ref) || this.joined) return ref;
    this.cells.add(ref);
    this.enqueue({
      op: 'run',
      ref,
      experiment: this.experiment,
      name: id,
      parent: this.runRef,
      start_time: Date.now(),
      tags: [
        { key: 'mlflow.runName', value: clip(id, LIMITS.tagValue) },
        { key: 'cell', value: clip(id, LIMITS.tagValue) },
        { key: 'ssfer_kind', value: 'cell' },
        ...(typeof config.seeds === 'number' ? [{ key: 'seeds', value: String(config.seeds) }] : []),
      ],
    });
    this.batch(ref, { params: flattenParams(config).filter((p) => p.key !== 'seed') });
    return ref;
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
    if (!this.uri) this.goOffline('no tracking URI (set tracking.uri, --tracking-uri or MLFLOW_TRACKING_URI)');
    else {
      try {
        this.sender = new Sender(new MlflowClient({ uri: this.uri, env: this.opts.env, retries: this.opts.retries ?? 2 }));
        this.sender.experiment = experiment;
        for (const [ref, r] of Object.entries(joined?.runs ?? {})) this.sender.runs.set(ref, r);
      } catch (err) {
        this.goOffline((err as Error).message);
      }
    }
  }

  async startRun(run: RunInfo): Promise<void> {
    this.guard(() => {
      this.open(path.join(run.dir, OUTBOX), this.opts.experiment ?? run.recipe);
      const tags: KeyValue[] = [
        { key: 'mlflow.runName', value: `${run.recipe} ${path.basename(run.dir)}` },
        { key: 'mlflow.source.name', value: run.file },
        { key: 'mlflow.source.type', value: 'LOCAL' },
        { key: 'recipe', value: run.recipe },
        { key: 'title', value: clip(run.title, LIMITS.tagValue) },
        { key: 'scale', value: run.scale },
        { key: 'seed', value: String(run.seed) },
        { key: 'seeds', value: String(run.seeds) },
        { key: 'backend', value: run.backend },
        { key: 'results_dir', value: run.dir },
        { key: 'ssfer_kind', value: 'run' },
        ...(run.commit
          ? [
              { key: 'mlflow.source.git.commit', value: run.commit },
              { key: 'git_commit', value: run.commit },
            ]
          : []),
      ];
      this.enqueue({
        op: 'run',
        ref: this.runRef,
        experiment: this.experiment,
        name: `${run.recipe} ${path.basename(run.dir)}`,
        parent: null,
        start_time: Date.now(),
        tags,
      });
    });
    await this.chain;
    if (this.parentId && this.uri) this.log(`ssfer: MLflow run ${this.parentId} in experiment '${this.experiment}' at ${safeUri(this.uri)}`);
  }

  /**
   * Makes the cells' runs now (a launcher's workers log their seeds under them) and returns what a
   * worker needs to join: the session that names the runs, the experiment, and the server's ids of
   * the run and the cells' runs (none while the server cannot be reached: a worker then finds them
   * by their ssfer_ref tag, and ssfer sync sends the run's outbox before its workers').
   */
  async share(cells: readonly CellSummaryInfo[]): Promise<unknown> {
    this.guard(() => {
      for (const c of cells) this.cellRun(c.id, c.config);
    });
    await this.chain;
    const runs: Record<string, RunRef> = {};
    for (const ref of [this.runRef, ...cells.map((c) => this.cellRef(c.id))]) {
      const r = this.sender?.runs.get(ref);
      if (r) runs[ref] = r;
    }
    return { session: this.refSession, experiment: this.experiment, runs };
  }

  /** A worker: logs under the run and cells' runs the launcher's tracker shared, in an outbox of its own (`mlflow-outbox.<worker>.jsonl`). */
  async join(run: RunInfo, shared: unknown, worker: string): Promise<void> {
    const s = shared as { session?: unknown; experiment?: unknown; runs?: Record<string, RunRef> } | null;
    if (!s || typeof s.session !== 'string' || typeof s.experiment !== 'string') {
      this.log(`ssfer: MLflow: ${run.dir} has no MLflow run to join (launch.json); this process records nothing in MLflow`);
      this.offline = 'no run to join';
      return;
    }
    this.joined = true;
    this.guard(() => this.open(workerOutbox(run.dir, worker), s.experiment as string, { session: s.session as string, runs: s.runs ?? {} }));
    this.parentId = s.runs?.[this.runRef]?.run_id ?? null;
    await this.chain;
  }

  async startCell(cell: CellInfo): Promise<void> {
    this.guard(() => {
      this.flush();
      const parent = this.cellRun(cell.id, cell.config);
      const ref = this.seedRef(cell);
      const name = `${cell.id} seed ${cell.seedIndex}`;
      this.enqueue({
        op: 'run',
        ref,
        experiment: this.experiment,
        name,
        parent,
        start_time: Date.now(),
        tags: [
          { key: 'mlflow.runName', value: clip(name, LIMITS.tagValue) },
          { key: 'cell', value: clip(cell.id, LIMITS.tagValue) },
          { key: 'seed', value: String(cell.config.seed) },
          { key: 'seed_index', value: String(cell.seedIndex) },
          { key: 'ssfer_kind', value: 'seed' },
        ],
      });
      const logged = new Map<string, string>();
      this.params.set(ref, logged);
      const params = flattenParams(cell.config).filter((p) => {
        const before = logged.get(p.key);
        if (before !== undefined && before !== p.value) return false; // MLflow params are write-once
        logged.set(p.key, p.value);
        return before === undefined;
      });
      this.batch(ref, { params });
      this.enqueue({ op: 'artifact', ref, name: 'config.json', text: `${JSON.stringify(cell.config, null, 2)}\n` });
    });
  }

  logMetrics(run: CellRun, metrics: Record<string, number>, step: number): void {
    this.guard(() => {
      const ref = this.seedRef(run);
      if (this.bufferRef !== ref) this.flush();
      this.bufferRef = ref;
      const timestamp = Date.now();
      for (const [k, v] of Object.entries(metrics)) if (Number.isFinite(v)) this.buffer.push({ key: mlflowKey(k), value: v, timestamp, step });
      this.lastStep.set(ref, step);
      if (this.buffer.length >= LIMITS.metrics || timestamp - this.lastFlush > 5000) this.flush();
    });
  }

  async endCell(run: CellRun, result: { metrics: Record<string, number>; artifacts: readonly string[]; status: RunStatus }): Promise<void> {
    this.guard(() => {
      this.flush();
      const ref = this.seedRef(run);
      const step = this.lastStep.get(ref) ?? 0;
      const timestamp = Date.now();
      const metrics = Object.entries(result.metrics)
        .filter(([, v]) => Number.isFinite(v))
        .map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step }));
      if (metrics.length) this.batch(ref, { metrics });
      for (const file of result.artifacts) this.enqueue({ op: 'artifact', ref, name: path.basename(file), file });
      this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
    });
    await this.chain;
  }

  async summarizeCell(cell: CellSummaryInfo, result: { metrics: Record<string, number>; status: RunStatus }): Promise<void> {
    this.guard(() => {
      this.flush();
      const ref = this.cellRun(cell.id, cell.config);
      const timestamp = Date.now();
      const metrics = Object.entries(result.metrics)
        .filter(([, v]) => Number.isFinite(v))
        .map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step: 0 }));
      if (metrics.length) this.batch(ref, { metrics });
      this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
    });
    await this.chain;
  }

  async endRun(result: { artifacts: readonly string[]; status: RunStatus }): Promise<void> {
    this.guard(() => {
      this.flush();
      for (const file of result.artifacts) this.enqueue({ op: 'artifact', ref: this.runRef, name: path.basename(file), file });
      this.enqueue({ op: 'status', ref: this.runRef, status: result.status, end_time: Date.now() });
    });
    await this.chain;
    if (this.offline)
      this.log(
        `ssfer: MLflow: not everything was sent; run 'ssfer sync ${path.dirname(this.outbox)}${this.uri ? '' : ' --tracking-uri URI'}' when the server is reachable`,
      );
  }
}
