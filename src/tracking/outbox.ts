import fs from 'node:fs';
import path from 'node:path';
import { LIMITS, MlflowClient, MlflowError, safeUri, type KeyValue, type Metric, type RunInfoMlflow } from './client.ts';

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
  | { op: 'status'; ref: string; status: string; end_time: number };

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
  | { type: 'ack'; id: string; result?: RunRef; skipped?: string };

export interface RunRef {
  run_id: string;
  experiment_id: string;
  artifact_uri?: string;
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

/** A nested configuration as dotted-key params within MLflow's limits. */
export function flattenParams(config: Record<string, unknown>): KeyValue[] {
  const out = new Map<string, string>();
  const walk = (v: unknown, prefix: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, prefix ? `${prefix}.${k}` : k);
      return;
    }
    const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null');
    out.set(mlflowKey(prefix), clip(text, LIMITS.paramValue));
  };
  walk(config, '');
  return [...out].map(([key, value]) => ({ key, value }));
}

/** Carries out outbox calls against a server, keeping the server's ids of the runs it made. */
export class Sender {
  readonly runs = new Map<string, RunRef>();
  private readonly experiments = new Map<string, string>();
  /** The experiment a run made by another process is looked up in (its ref is a tag there). */
  experiment: string | null = null;

  constructor(readonly client: MlflowClient) {}

  private async experimentId(name: string): Promise<string> {
    let exp = this.experiments.get(name);
    if (!exp) this.experiments.set(name, (exp = await this.client.getOrCreateExperiment(name)));
    return exp;
  }

  /** Sends one call; `replay` first looks for a run an unacknowledged creation may have made. */
  async send(op: Op, replay = false): Promise<{ result?: RunRef; skipped?: string }> {
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
    if (op.op === 'batch') {
      await this.client.logBatch(run.run_id, op);
      return {};
    }
    if (op.op === 'artifact') {
      let bytes: Buffer;
      if (op.text !== undefined) bytes = Buffer.from(op.text);
      else if (op.file && fs.existsSync(op.file)) bytes = fs.readFileSync(op.file);
      else return { skipped: `${op.file} no longer exists` };
      await this.client.uploadArtifact(run, op.name, bytes);
      return {};
    }
    await this.client.updateRun(run.run_id, op.status, op.end_time);
    return {};
  }

  /**
   * The server's run of a ref: made by this sender, or — a run another process made (a launcher's
   * parent and cell runs, which its workers log under) — found by its ssfer_ref tag.
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
    throw new MlflowError(
      `outbox: no MLflow run for '${ref}' (its creation is missing from the outbox, and the server has none with that ref)`,
      null,
      null,
      false,
    );
  }
}

export interface SyncResult {
  file: string;
  sent: number;
  acknowledged: number;
  skipped: string[];
  runs: RunRef[];
}

/**
 * Replays the calls of an outbox that the server has not acknowledged, in order, recording an
 * ack for each as it succeeds. Running it again sends nothing.
 */
export async function syncOutbox(
  file: string,
  opts: { uri?: string; env?: NodeJS.ProcessEnv; retries?: number; senders?: Map<string, Sender> } = {},
): Promise<SyncResult> {
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
    const ack = acked.get(l.id);
    if (ack) {
      if (ack.result) sender.runs.set(l.ref, ack.result);
      result.acknowledged++;
      continue;
    }
    const { type: _t, id: _i, ...op } = l;
    let out: { result?: RunRef; skipped?: string };
    try {
      out = await sender.send(op as Op, true);
    } catch (err) {
      throw new MlflowError(
        `sync ${file} (to ${safeUri(sender.client.uri)}): ${(err as Error).message}; ${result.sent} calls sent, run 'ssfer sync' again to continue`,
        null,
        null,
        false,
      );
    }
    appendLine(file, { type: 'ack', id: l.id, ...out });
    result.sent++;
    if (out.skipped) result.skipped.push(out.skipped);
    if (out.result && l.op === 'run') result.runs.push(out.result);
  }
  return result;
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
