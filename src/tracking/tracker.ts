import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { CellInfo, CellResult, DatasetInput, RunInfo, RunStatus, SharedStage, Tracker } from '../contracts/tracker.ts';
import { LIMITS, MlflowClient, MlflowError, safeUri, splitBatch, type DatasetMlflow, type KeyValue, type Metric } from './client.ts';
import { appendLine, clip, LONG_PARAMS_FILE, mlflowKey, OUTBOX, Sender, settingsParams, type Op, type Sent } from './outbox.ts';

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
  /** Log each finished cell's model as an MLflow Model (default true). */
  logModels?: boolean;
  /** Register the best cell's model under this name at the end of the run; null: no registration. */
  register?: string | null;
  /** The Python version the models' environment files name (default 3.10). */
  pythonVersion?: string;
  /** `mlflow.user` (default: the user this process runs as). */
  user?: string;
}

/** The name the metrics of a shared stage go under, and its runs are called by. */
const STAGE_TITLES: Readonly<Record<string, string>> = { pretrain: 'pre-training' };
/** Tags ssfer sets itself: a grid axis of the same name is tagged `grid.<axis>` instead. */
const OWN_TAGS = new Set(['recipe', 'title', 'scale', 'seed', 'backend', 'results_dir', 'ssfer_kind', 'ssfer_ref', 'git_commit', 'cell', 'stage', 'stage_key']);
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
  readonly linked: Set<string>;
}

/**
 * One MLflow experiment per recipe, one parent run per `ssfer run`, one nested run per cell and
 * one per shared stage (the pre-training the cells use). Every call is written to the outbox
 * first and then sent in order. When the server cannot be reached, training goes on: the calls
 * wait, the tracker tries again after 5 s, 10 s, … up to every 2 minutes, and sends the backlog
 * by itself when the server answers again; what is still unsent at the end `ssfer sync` sends.
 * Each call is acknowledged in the outbox once sent, so nothing is sent twice.
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
  private session = '';
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
  private cells = new Map<string, { ref: string; info: CellInfo }>();
  private shared = new Map<string, SharedRun>();
  private names = new Set<string>();
  private models: { cell: string; ref: string; accuracy: number; dataset: string }[] = [];

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
    return `${this.session}:run`;
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
      this.outbox = path.join(run.dir, OUTBOX);
      this.session = randomUUID();
      this.experiment = this.opts.experiment ?? run.recipe;
      appendLine(this.outbox, {
        type: 'session',
        session: this.session,
        uri: this.uri ? safeUri(this.uri) : null,
        experiment: this.experiment,
        time: Date.now(),
      });
      if (!this.uri) this.stop('no tracking URI (set tracking.uri, --tracking-uri or MLFLOW_TRACKING_URI)');
      else {
        try {
          this.sender = new Sender(new MlflowClient({ uri: this.uri, env: this.opts.env, retries: this.opts.retries ?? 2 }));
        } catch (err) {
          this.stop((err as Error).message);
        }
      }
      const name = `${run.recipe} ${path.basename(run.dir)}`;
      this.enqueue({
        op: 'run',
        ref: this.runRef,
        experiment: this.experiment,
        name,
        parent: null,
        start_time: Date.now(),
        tags: [
          { key: 'mlflow.runName', value: name },
          ...this.sourceTags(),
          ...(run.description?.trim() ? [{ key: 'mlflow.note.content', value: clip(run.description.trim(), LIMITS.tagValue) }] : []),
          { key: 'recipe', value: run.recipe },
          { key: 'title', value: clip(run.title, LIMITS.tagValue) },
          { key: 'scale', value: run.scale },
          { key: 'seed', value: String(run.seed) },
          { key: 'backend', value: run.backend },
          { key: 'results_dir', value: run.dir },
          { key: 'ssfer_kind', value: 'run' },
          ...(run.commit ? [{ key: 'git_commit', value: run.commit }] : []),
        ],
      });
      // The parent's params: the settings every cell shares.
      const common = commonParams(run.cells ?? []);
      if (common.length) this.batch(this.runRef, { params: common });
    });
    await this.settled();
  }

  async startCell(cell: CellInfo): Promise<void> {
    this.guard(() => {
      this.flush();
      const ref = `${this.session}:cell:${cell.id}`;
      this.cells.set(cell.id, { ref, info: cell });
      const grid = cell.grid ?? [];
      const rows = grid.filter((a) => a.side === 'row').map((a) => a.label);
      const columns = grid.filter((a) => a.side === 'column').map((a) => a.label);
      const readable = [rows.join(' '), columns.join(' ')].filter(Boolean).join(' · ');
      const name = this.uniqueName(readable || cell.id, cell.id);
      this.enqueue({
        op: 'run',
        ref,
        experiment: this.experiment,
        name,
        parent: this.runRef,
        start_time: Date.now(),
        tags: [
          { key: 'mlflow.runName', value: name },
          ...this.sourceTags(),
          { key: 'cell', value: clip(cell.id, LIMITS.tagValue) },
          { key: 'ssfer_kind', value: 'cell' },
          ...grid.map((a) => ({ key: mlflowKey(OWN_TAGS.has(a.axis) ? `grid.${a.axis}` : a.axis), value: clip(a.value, LIMITS.tagValue) })),
        ],
      });
      const { params, long } = settingsParams(cell.config);
      this.batch(ref, { params });
      if (Object.keys(long).length) this.enqueue({ op: 'artifact', ref, name: LONG_PARAMS_FILE, text: `${JSON.stringify(long, null, 2)}\n` });
      this.enqueue({ op: 'artifact', ref, name: 'config.json', text: `${JSON.stringify(cell.config, null, 2)}\n` });
      // A shared stage an earlier cell already made: link this cell to its run.
      for (const [stage, s] of Object.entries(cell.shared ?? {})) {
        const run = this.shared.get(s.key);
        if (run?.created) this.link(cell.id, stage, run);
      }
    });
  }

  /** The run of a shared stage, created on first use, and the cell linked to it. */
  private sharedRun(cellId: string, stage: string, s: SharedStage): SharedRun {
    let run = this.shared.get(s.key);
    if (!run) this.shared.set(s.key, (run = { ref: `${this.session}:stage:${stage}:${s.key}`, stage, created: false, ended: false, linked: new Set() }));
    if (!run.created) {
      run.created = true;
      const name = this.uniqueName(`${STAGE_TITLES[stage] ?? stage} ${s.key.slice(0, 8)}`, s.key);
      this.enqueue({
        op: 'run',
        ref: run.ref,
        experiment: this.experiment,
        name,
        parent: this.runRef,
        start_time: Date.now(),
        tags: [
          { key: 'mlflow.runName', value: name },
          ...this.sourceTags(),
          { key: 'ssfer_kind', value: 'stage' },
          { key: 'stage', value: stage },
          { key: 'stage_key', value: s.key },
        ],
      });
      this.batch(run.ref, { params: settingsParams(s.config).params });
    }
    this.link(cellId, stage, run);
    return run;
  }

  /** Tags a cell with the shared stage it used: the stage's key and its run. */
  private link(cellId: string, stage: string, run: SharedRun): void {
    if (run.linked.has(cellId)) return;
    run.linked.add(cellId);
    const { ref, info } = this.cells.get(cellId)!;
    this.batch(ref, { tags: [{ key: mlflowKey(`${stage}_key`), value: info.shared![stage]!.key }] });
    this.enqueue({ op: 'link', ref, key: mlflowKey(`${stage}_run_id`), target: run.ref });
  }

  logMetrics(cellId: string, metrics: Record<string, number>, step: number): void {
    this.guard(() => {
      const cell = this.cells.get(cellId);
      if (!cell) return;
      const timestamp = Date.now();
      for (const [k, v] of Object.entries(metrics)) {
        if (!Number.isFinite(v)) continue;
        const stage = k.split('/')[0]!;
        const shared = cell.info.shared?.[stage];
        const ref = shared ? this.sharedRun(cellId, stage, shared).ref : cell.ref;
        let buffer = this.buffers.get(ref);
        if (!buffer) this.buffers.set(ref, (buffer = []));
        buffer.push({ key: mlflowKey(k), value: v, timestamp, step });
        this.buffered++;
      }
      if (this.buffered >= LIMITS.metrics || timestamp - this.lastFlush > 5000) this.flush();
    });
  }

  async endCell(cellId: string, result: CellResult): Promise<void> {
    this.guard(() => {
      this.flush();
      const cell = this.cells.get(cellId);
      if (!cell) return;
      const { ref } = cell;
      const timestamp = Date.now();
      const finite = Object.entries(result.metrics).filter(([, v]) => Number.isFinite(v));
      // A shared stage's figures go to its run too: the first finished cell that used it ends it.
      for (const [stage, s] of Object.entries(cell.info.shared ?? {})) {
        const figures = finite.filter(([k]) => k.startsWith(`health.${stage}_`));
        const existing = this.shared.get(s.key);
        if (!existing?.created && figures.length === 0) continue; // the cell had no such stage
        const run = this.sharedRun(cellId, stage, s);
        if (run.ended || result.status !== 'FINISHED') continue;
        run.ended = true;
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
      if (result.model && this.logsModels && result.status === 'FINISHED') this.logModel(cellId, ref, result, timestamp);
      this.enqueue({ op: 'status', ref, status: result.status, end_time: timestamp });
    });
    await this.settled();
  }

  private logModel(cellId: string, ref: string, result: CellResult, timestamp: number): void {
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
      tags: [...this.sourceTags(), { key: 'cell', value: clip(cellId, LIMITS.tagValue) }],
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
    if (accuracy !== undefined && Number.isFinite(accuracy)) this.models.push({ cell: cellId, ref, accuracy, dataset: dataset?.name ?? '' });
  }

  async endRun(result: { artifacts: readonly string[]; status: RunStatus; metrics?: Readonly<Record<string, number>> }): Promise<void> {
    this.guard(() => {
      this.flush();
      const timestamp = Date.now();
      for (const run of this.shared.values()) {
        if (!run.created || run.ended) continue;
        run.ended = true;
        this.enqueue({ op: 'status', ref: run.ref, status: result.status, end_time: timestamp });
      }
      const metrics = Object.entries(result.metrics ?? {}).filter(([, v]) => Number.isFinite(v));
      if (metrics.length) this.batch(this.runRef, { metrics: metrics.map(([k, v]) => ({ key: mlflowKey(k), value: v, timestamp, step: 0 })) });
      if (this.opts.register && this.models.length) {
        const best = this.models.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
        this.enqueue({
          op: 'register',
          ref: best.ref,
          name: this.opts.register,
          description: `cell ${best.cell} of ${this.run!.recipe} (test accuracy ${(100 * best.accuracy).toFixed(2)} %${best.dataset ? ` on ${best.dataset}` : ''}, the best of the run)`,
        });
      }
      for (const file of result.artifacts) this.enqueue({ op: 'artifact', ref: this.runRef, name: path.basename(file), file });
      this.enqueue({ op: 'status', ref: this.runRef, status: result.status, end_time: timestamp });
      // One last try now for what waited, rather than at the next timed one.
      if (this.paused && !this.stopped) {
        this.clearTimer();
        this.kick();
      }
    });
    await this.settled();
    this.clearTimer();
    if (this.queue.length > 0)
      this.log(
        `ssfer: MLflow: ${this.queue.length} call${this.queue.length === 1 ? ' was' : 's were'} not sent; run '${this.syncHint}' when the server is reachable`,
      );
  }
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
function commonParams(cells: readonly CellInfo[]): KeyValue[] {
  if (cells.length === 0) return [];
  const [first, ...rest] = cells.map((c) => new Map(settingsParams(c.config).params.map((p) => [p.key, p.value])));
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
