import fs from 'node:fs';
import path from 'node:path';
import { LIMITS, MlflowClient, MlflowError, safeUri, type DatasetMlflow, type KeyValue, type Metric, type RunInfoMlflow } from './client.ts';
import { mlflowModelFiles, ONNX_FILE, type MlflowModelSpec } from './mlmodel.ts';

/**
 * The local outbox: every tracking call of a run, one JSON line each, beside the run's results.
 * A call that reached the server gets an `ack` line (with the server's ids), so `ssfer sync`
 * replays exactly the calls that were not acknowledged: no duplicate runs or metric points.
 */
export const OUTBOX = 'mlflow-outbox.jsonl';

export type Op =
  | { op: 'run'; ref: string; experiment: string; name: string; parent: string | null; start_time: number; tags: KeyValue[] }
  | { op: 'batch'; ref: string; metrics: Metric[]; params: KeyValue[]; tags: KeyValue[] }
  | { op: 'artifact'; ref: string; name: string; file?: string; text?: string }
  | { op: 'status'; ref: string; status: string; end_time: number }
  /** Datasets as the run's inputs. */
  | { op: 'inputs'; ref: string; datasets: { dataset: DatasetMlflow; tags: KeyValue[] }[] }
  /** A tag of run `ref` whose value is the id of run `target` (known only once that run exists on the server). */
  | { op: 'link'; ref: string; key: string; target: string }
  /**
   * An ONNX file as an MLflow Model of run `ref`, named `name`: an MLflow 3 logged model where the
   * server has them (its `metrics` are logged against it), else run artifacts under `name/`.
   */
  | { op: 'model'; ref: string; name: string; onnx: string; spec: MlflowModelSpec; time: number; tags: KeyValue[]; params: KeyValue[]; metrics: Metric[] }
  /**
   * The model logged for run `ref` (named `model`, default 'model') as a new version of the
   * registered model `name`; `elsewhere`: another outbox of the run logs that model (a launcher's
   * worker), so it is looked up on the server, and waited for while it is not there yet.
   */
  | { op: 'register'; ref: string; name: string; description: string; model?: string; elsewhere?: boolean };

/** What a sent call left on the server that later calls refer to. */
export interface Sent {
  result?: RunRef;
  skipped?: string;
  model?: ModelRef;
  version?: string;
}

export type Line =
  | {
      type: 'session';
      session: string;
      uri: string | null;
      experiment: string;
      time: number;
      /** A worker's outbox: the runs it logs under that another process made (by ref), with their server ids when known. */
      joined?: { session: string; runs: Record<string, RunRef> };
    }
  | ({ type: 'op'; id: string } & Op)
  | ({ type: 'ack'; id: string } & Sent);

export interface RunRef {
  run_id: string;
  experiment_id: string;
  artifact_uri?: string;
}

/** A logged model: its MLflow 3 id (null: logged as run artifacts) and the URI a model version is created from. */
export interface ModelRef {
  model_id: string | null;
  source: string;
}

export function appendLine(file: string, line: Line): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
}

export function readOutbox(file: string): Line[] {
  const lines: Line[] = [];
  for (const text of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!text.trim()) continue;
    try {
      lines.push(JSON.parse(text) as Line);
    } catch {
      // a line cut short by a crash: nothing after it was acknowledged either
    }
  }
  return lines;
}

/** Tag keys, metric keys and param keys MLflow accepts: letters, digits, _ - . / and space. */
export function mlflowKey(key: string): string {
  const k = key.replace(/κ/g, 'kappa').replace(/[^A-Za-z0-9_\-. /]/g, '_');
  return k.length > LIMITS.key ? k.slice(0, LIMITS.key) : k;
}

const MARK = '…[truncated]';
export function clip(value: string, limit: number): string {
  return value.length <= limit ? value : `${value.slice(0, limit - MARK.length)}${MARK}`;
}

/** A nested configuration as dotted-key params, each value within `limit` characters. */
export function flattenParams(config: Record<string, unknown>, limit: number = LIMITS.paramValue): KeyValue[] {
  return [...flatten(config)].map(([key, value]) => ({ key, value: clip(value, limit) }));
}

function flatten(config: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (v: unknown, prefix: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, prefix ? `${prefix}.${k}` : k);
      return;
    }
    out.set(mlflowKey(prefix), typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null'));
  };
  walk(config, '');
  return out;
}

/**
 * The longest param value logged: MLflow servers before 2.8 refuse longer ones (a limit of 500
 * characters), and a refused call would stop `ssfer sync` at it.
 */
export const PARAM_VALUE_LIMIT = 500;
/** Where a cell's param values longer than PARAM_VALUE_LIMIT are kept in full. */
export const LONG_PARAMS_FILE = 'long-params.json';
/**
 * Top-level keys of a cell's config that are not its settings: the recipe's grid, scales, paper
 * numbers, texts, tracking and launcher (where the units are trained changes no number).
 */
const NOT_SETTINGS = new Set(['scales', 'grid', 'reference', 'title', 'description', 'tracking', 'launcher']);

/**
 * A cell's own resolved settings as params: every key but the recipe's grid, scales, reference,
 * texts, tracking and launcher. A value longer than PARAM_VALUE_LIMIT is logged cut, saying so, and in
 * full in `long` (for the LONG_PARAMS_FILE artifact).
 */
export function settingsParams(config: Record<string, unknown>): { params: KeyValue[]; long: Record<string, string> } {
  const settings = Object.fromEntries(Object.entries(config).filter(([k]) => !NOT_SETTINGS.has(k)));
  const long: Record<string, string> = {};
  const params = [...flatten(settings)].map(([key, value]) => {
    if (value.length <= PARAM_VALUE_LIMIT) return { key, value };
    long[key] = value;
    const mark = `…[${value.length} characters; in full in ${LONG_PARAMS_FILE}]`;
    return { key, value: `${value.slice(0, PARAM_VALUE_LIMIT - mark.length)}${mark}` };
  });
  return { params, long };
}

/** Carries out outbox calls against a server, keeping the server's ids of the runs and models it made. */
export class Sender {
  readonly runs = new Map<string, RunRef>();
  readonly models = new Map<string, ModelRef>();
  private readonly experiments = new Map<string, string>();
  private version: Promise<string | null> | null = null;
  /** The experiment a run made by another process is looked up in (its ref is a tag there). */
  experiment: string | null = null;

  constructor(readonly client: MlflowClient) {}

  private async experimentId(name: string): Promise<string> {
    let exp = this.experiments.get(name);
    if (!exp) this.experiments.set(name, (exp = await this.client.getOrCreateExperiment(name)));
    return exp;
  }

  /** Remembers what an acknowledged call left on the server (when an outbox is replayed). */
  restore(op: Op, ack: Sent): void {
    if (ack.result) this.runs.set(op.ref, ack.result);
    if (ack.model) this.models.set(op.ref, ack.model);
  }

  /**
   * Sends one call; `replay` first looks for what an unacknowledged call may have made (a run).
   * Every call can be sent twice without a duplicate: metrics, params, tags and inputs are
   * merged by the server, uploads replace, a model or model version is looked up first.
   */
  async send(op: Op, replay = false): Promise<Sent> {
    if (op.op === 'run') {
      const exp = await this.experimentId(op.experiment);
      const tags = [...op.tags, { key: 'ssfer_ref', value: op.ref }];
      if (op.parent) tags.push({ key: 'mlflow.parentRunId', value: (await this.run(op.parent)).run_id });
      let info: RunInfoMlflow | undefined;
      if (replay) info = (await this.client.searchRuns([exp], `tags.ssfer_ref = '${op.ref.replace(/'/g, "\\'")}'`, [], 1))[0]?.info;
      info ??= await this.client.createRun({ experiment_id: exp, run_name: op.name, start_time: op.start_time, tags });
      const ref = { run_id: info.run_id, experiment_id: info.experiment_id, artifact_uri: info.artifact_uri };
      this.runs.set(op.ref, ref);
      return { result: ref };
    }
    const run = await this.run(op.ref);
    switch (op.op) {
      case 'batch':
        await this.client.logBatch(run.run_id, op);
        return {};
      case 'artifact': {
        let bytes: Buffer;
        if (op.text !== undefined) bytes = Buffer.from(op.text);
        else if (op.file && fs.existsSync(op.file)) bytes = fs.readFileSync(op.file);
        else return { skipped: `${op.file} no longer exists` };
        await this.client.uploadArtifact(run, op.name, bytes);
        return {};
      }
      case 'status':
        await this.client.updateRun(run.run_id, op.status, op.end_time);
        return {};
      case 'inputs':
        try {
          await this.client.logInputs(run.run_id, op.datasets);
        } catch (err) {
          // Servers before MLflow 2.4 have no dataset inputs.
          if (err instanceof MlflowError && err.status === 404 && err.code !== 'RESOURCE_DOES_NOT_EXIST')
            return { skipped: `the server keeps no dataset inputs (${err.message})` };
          throw err;
        }
        return {};
      case 'link':
        await this.client.setTag(run.run_id, op.key, (await this.run(op.target)).run_id);
        return {};
      case 'model':
        return this.sendModel(op, run);
      case 'register':
        return this.register(op, run);
    }
  }

  private async sendModel(op: Extract<Op, { op: 'model' }>, run: RunRef): Promise<Sent> {
    if (!fs.existsSync(op.onnx)) return { skipped: `${op.onnx} no longer exists` };
    const onnx = fs.readFileSync(op.onnx);
    const c = this.client;
    // Asked once per server; a failed question is asked again with the call's next try.
    this.version ??= c.serverVersion().catch((err: unknown) => {
      this.version = null;
      throw err;
    });
    const mlflowVersion = await this.version;
    // MLflow 3 keeps a model as a logged model of the run (`runs:/<run>/model` finds it there);
    // an MLflow 2 server has no such API, and the model goes under the run's artifacts.
    const quoted = (v: string) => `'${v.replace(/'/g, "\\'")}'`;
    const found = await c.searchLoggedModels([run.experiment_id], `name = ${quoted(op.name)} AND source_run_id = ${quoted(run.run_id)}`);
    const logged =
      found === null
        ? null
        : (found[0] ??
          (await c.createLoggedModel({ experiment_id: run.experiment_id, name: op.name, source_run_id: run.run_id, params: op.params, tags: op.tags })));
    const files = mlflowModelFiles(op.spec, {
      runId: run.run_id,
      modelId: logged?.info.model_id ?? null,
      artifactPath: logged ? logged.info.artifact_uri : op.name,
      mlflowVersion,
      onnxBytes: onnx.length,
      created: new Date(op.time),
    });
    if (!logged) {
      for (const [name, text] of Object.entries(files)) await c.uploadArtifact(run, `${op.name}/${name}`, Buffer.from(text));
      await c.uploadArtifact(run, `${op.name}/${ONNX_FILE}`, onnx);
      const model = { model_id: null, source: `${run.artifact_uri ?? `runs:/${run.run_id}`}/${op.name}` };
      this.models.set(op.ref, model);
      return { model };
    }
    const id = logged.info.model_id;
    const at = { artifact_uri: logged.info.artifact_uri, experiment_id: logged.info.experiment_id, run_id: id };
    for (const [name, text] of Object.entries(files)) await c.uploadArtifact(at, name, Buffer.from(text));
    await c.uploadArtifact(at, ONNX_FILE, onnx);
    const outputs = (await c.getRun(run.run_id)).outputs?.model_outputs ?? [];
    if (!outputs.some((o) => o.model_id === id)) await c.logOutputs(run.run_id, [{ model_id: id, step: 0 }]);
    await c.finalizeLoggedModel(id);
    if (op.metrics.length) await c.logBatch(run.run_id, { metrics: op.metrics.map((m) => ({ ...m, model_id: id })) });
    const model = { model_id: id, source: `models:/${id}` };
    this.models.set(op.ref, model);
    return { model };
  }

  private async register(op: Extract<Op, { op: 'register' }>, run: RunRef): Promise<Sent> {
    const model = this.models.get(op.ref) ?? (op.elsewhere ? await this.loggedModel(op.model ?? 'model', op.ref, run) : undefined);
    if (!model) return { skipped: `no model was logged for run ${run.run_id}, so none is registered as '${op.name}'` };
    const c = this.client;
    await c.ensureRegisteredModel(op.name);
    const quoted = (v: string) => `'${v.replace(/'/g, "\\'")}'`;
    const existing = (await c.searchModelVersions(`name = ${quoted(op.name)} AND run_id = ${quoted(run.run_id)}`))[0];
    const version =
      existing ??
      (await c.createModelVersion({
        name: op.name,
        source: model.source,
        run_id: run.run_id,
        ...(model.model_id ? { model_id: model.model_id } : {}),
        description: op.description,
      }));
    return { version: version.version };
  }

  /**
   * The model `name` another process logged for a run (a launcher's worker): its logged model on
   * MLflow 3, its run's `name/` artifacts on MLflow 2. Not there yet: a NotYetSent error (the call
   * is tried again later, and `ssfer sync` sends the other outboxes first).
   */
  private async loggedModel(name: string, ref: string, run: RunRef): Promise<ModelRef> {
    const quoted = (v: string) => `'${v.replace(/'/g, "\\'")}'`;
    const found = await this.client.searchLoggedModels([run.experiment_id], `name = ${quoted(name)} AND source_run_id = ${quoted(run.run_id)}`);
    let model: ModelRef | null = null;
    if (found === null) {
      const at = { run_id: run.run_id, experiment_id: run.experiment_id, artifact_uri: run.artifact_uri ?? '' };
      const there = await this.client.downloadArtifact(at, `${name}/MLmodel`).then(
        () => true,
        (err: unknown) => {
          if (err instanceof MlflowError && err.status === 404) return false;
          throw err;
        },
      );
      if (there) model = { model_id: null, source: `${run.artifact_uri ?? `runs:/${run.run_id}`}/${name}` };
    } else {
      const ready = found.find((m) => m.info.status === undefined || m.info.status === 'LOGGED_MODEL_READY');
      if (ready) model = { model_id: ready.info.model_id, source: `models:/${ready.info.model_id}` };
    }
    if (!model) throw new NotYetSent(`the model '${name}' of run ${run.run_id} (${ref}) is not on the server yet; another outbox of the run logs it`);
    this.models.set(ref, model);
    return model;
  }

  /**
   * The server's run of a ref: made by this sender, or — a run another process made (a launcher's
   * parent, cell and shared stages' runs, which its workers log under) — found by its ssfer_ref
   * tag. Not there yet: a NotYetSent error.
   */
  private async run(ref: string): Promise<RunRef> {
    const r = this.runs.get(ref);
    if (r) return r;
    if (this.experiment) {
      const exp = await this.experimentId(this.experiment);
      const found = (await this.client.searchRuns([exp], `tags.ssfer_ref = '${ref.replace(/'/g, "\\'")}'`, [], 1))[0]?.info;
      if (found) {
        const ref2 = { run_id: found.run_id, experiment_id: found.experiment_id, artifact_uri: found.artifact_uri };
        this.runs.set(ref, ref2);
        return ref2;
      }
    }
    throw new NotYetSent(`outbox: no MLflow run for '${ref}' yet (the server has none with that ref; another outbox of the run creates it)`);
  }
}

/**
 * A call names a run or model that another outbox of the run makes (another process of a
 * launcher) and the server does not have yet: a tracker tries it again later, `ssfer sync` sends
 * the run's other outboxes first.
 */
export class NotYetSent extends MlflowError {
  constructor(message: string) {
    super(message, null, 'NOT_YET_SENT', true);
    this.name = 'NotYetSent';
  }
}

export interface SyncResult {
  file: string;
  sent: number;
  acknowledged: number;
  skipped: string[];
  runs: RunRef[];
  /** With `defer`: why sending stopped at a call that waits for a run or model another outbox makes. */
  waiting?: string;
}

export interface SyncOptions {
  uri?: string;
  env?: NodeJS.ProcessEnv;
  retries?: number;
  /** One sender per server, shared by the outboxes of one run (the launcher's and its workers'), whose refs meet. */
  senders?: Map<string, Sender>;
  /** Stop at a call that waits for another outbox (NotYetSent) and say so in `waiting`, rather than throw. */
  defer?: boolean;
}

/**
 * Replays the calls of an outbox that the server has not acknowledged, in order, recording an
 * ack for each as it succeeds. Running it again sends nothing.
 */
export async function syncOutbox(file: string, opts: SyncOptions = {}): Promise<SyncResult> {
  const env = opts.env ?? process.env;
  const lines = readOutbox(file);
  const acked = new Map<string, Extract<Line, { type: 'ack' }>>();
  for (const l of lines) if (l.type === 'ack') acked.set(l.id, l);
  const result: SyncResult = { file, sent: 0, acknowledged: 0, skipped: [], runs: [] };
  // Shared by the outboxes of one run (the launcher's and its workers'), whose refs meet: a worker's calls name the launcher's runs.
  const senders = opts.senders ?? new Map<string, Sender>();
  let session: Extract<Line, { type: 'session' }> | undefined;
  const senderFor = (): Sender => {
    const uri = opts.uri ?? session?.uri ?? env.MLFLOW_TRACKING_URI;
    if (!uri) throw new MlflowError(`${file}: no tracking URI; pass --tracking-uri or set MLFLOW_TRACKING_URI`, null, null, false);
    let s = senders.get(uri);
    if (!s) senders.set(uri, (s = new Sender(new MlflowClient({ uri, env, retries: opts.retries }))));
    return s;
  };
  for (const l of lines) {
    if (l.type === 'session') {
      session = l;
      const sender = senderFor();
      sender.experiment = l.experiment;
      for (const [ref, run] of Object.entries(l.joined?.runs ?? {})) if (!sender.runs.has(ref)) sender.runs.set(ref, run);
      continue;
    }
    if (l.type !== 'op') continue;
    const sender = senderFor();
    const { type: _t, id: _i, ...op } = l;
    const ack = acked.get(l.id);
    if (ack) {
      sender.restore(op as Op, ack);
      result.acknowledged++;
      continue;
    }
    let out: Sent;
    try {
      out = await sender.send(op as Op, true);
    } catch (err) {
      const message = `sync ${file} (to ${safeUri(sender.client.uri)}): ${(err as Error).message}; ${result.sent} calls sent, run 'ssfer sync' again to continue`;
      if (err instanceof NotYetSent) {
        if (opts.defer) return { ...result, waiting: (err as Error).message };
        throw new NotYetSent(message);
      }
      throw new MlflowError(message, null, null, false);
    }
    appendLine(file, { type: 'ack', id: l.id, ...out });
    result.sent++;
    if (out.skipped) result.skipped.push(out.skipped);
    if (out.result && l.op === 'run') result.runs.push(out.result);
  }
  return result;
}

/**
 * Syncs outboxes in order (a run folder's own first, then its workers'), sharing one sender per
 * server. An outbox whose next call names a run or model that another outbox makes (a worker
 * linking to the pre-training run another worker created; the run's registration of a model a
 * worker logged) is set aside and continued after the others, as long as that sends anything.
 * Each file's result (its calls sent over every pass), or why it stopped.
 */
export async function syncOutboxes(
  files: readonly string[],
  opts: Omit<SyncOptions, 'defer'> = {},
): Promise<{ file: string; result?: SyncResult; error?: string }[]> {
  const senders = opts.senders ?? new Map<string, Sender>();
  const results = new Map<string, SyncResult>();
  const errors = new Map<string, string>();
  let pending = [...files];
  for (;;) {
    const waiting: string[] = [];
    let sent = 0;
    for (const file of pending) {
      let r: SyncResult;
      try {
        r = await syncOutbox(file, { ...opts, senders, defer: true });
      } catch (err) {
        errors.set(file, (err as Error).message);
        continue;
      }
      const before = results.get(file);
      results.set(
        file,
        before
          ? {
              ...r,
              sent: before.sent + r.sent,
              acknowledged: before.acknowledged,
              skipped: [...before.skipped, ...r.skipped],
              runs: [...before.runs, ...r.runs],
            }
          : r,
      );
      sent += r.sent;
      if (r.waiting) waiting.push(file);
    }
    if (waiting.length === 0 || sent === 0) {
      for (const file of waiting)
        errors.set(file, `sync ${file}: ${results.get(file)!.waiting}, and no outbox under the folder makes it; run 'ssfer sync' again once it is there`);
      break;
    }
    pending = waiting;
  }
  return files.map((file) => (errors.has(file) ? { file, error: errors.get(file)! } : { file, result: results.get(file)! }));
}

/** A worker's outbox in the run folder: `mlflow-outbox.<worker>.jsonl`. */
export function workerOutbox(dir: string, worker: string): string {
  return path.join(dir, `mlflow-outbox.${worker.replace(/[^A-Za-z0-9_.-]/g, '_')}.jsonl`);
}

const OUTBOX_FILE = /^mlflow-outbox(\.[A-Za-z0-9_.-]+)?\.jsonl$/;

/**
 * Outbox files under a folder (a run folder, a recipe's folder or the results root): in a run
 * folder the run's own first (it makes the runs its workers log under), then its workers'.
 */
export function findOutboxes(dir: string, depth = 4): string[] {
  const here = fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? fs.readdirSync(dir).filter((f) => OUTBOX_FILE.test(f)) : [];
  if (here.length) return here.sort((a, b) => (a === OUTBOX ? -1 : b === OUTBOX ? 1 : a.localeCompare(b))).map((f) => path.join(dir, f));
  if (depth === 0 || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((d) => findOutboxes(path.join(dir, d.name), depth - 1));
}
