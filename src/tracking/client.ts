/**
 * A small MLflow REST API 2.0 client over fetch: experiments, runs, batched logging, searches,
 * and artifacts through the tracking server's artifact proxy (`mlflow server --serve-artifacts`).
 */

import { splitCredentials } from '../core/uri.ts';
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  /** MLflow 3: the logged model the metric describes, and the dataset it was measured on. */
  model_id?: string;
  dataset_name?: string;
  dataset_digest?: string;
}
export interface KeyValue {
  key: string;
  value: string;
}

export interface RunInfoMlflow {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
}
export interface MlflowRun {
  info: RunInfoMlflow;
  data: { metrics?: { key: string; value: number; timestamp?: number; step?: number }[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: { tags?: KeyValue[]; dataset: DatasetMlflow }[]; model_inputs?: { model_id: string }[] };
  outputs?: { model_outputs?: { model_id: string; step: number }[] };
}

/** A dataset as MLflow records it (`source` and `profile` are JSON text). */
export interface DatasetMlflow {
  name: string;
  digest: string;
  source_type: string;
  source: string;
  schema?: string;
  profile?: string;
}

/** An MLflow 3 logged model. */
export interface LoggedModelMlflow {
  info: {
    model_id: string;
    experiment_id: string;
    name: string;
    artifact_uri: string;
    status?: string;
    source_run_id?: string;
    tags?: KeyValue[];
  };
  data?: { params?: KeyValue[]; metrics?: { key: string; value: number }[] };
}

/** A version of a registered model. */
export interface ModelVersionMlflow {
  name: string;
  version: string;
  source?: string;
  run_id?: string;
  model_id?: string;
  status?: string;
}

/** MLflow's per-request limits for runs/log-batch. */
export const LIMITS = {
  metrics: 1000,
  params: 100,
  tags: 100,
  total: 1000,
  bytes: 1_000_000,
  paramValue: 6000,
  tagValue: 8000,
  key: 250,
} as const;

/** A failed MLflow call, with MLflow's error code when the server sent one. */
export class MlflowError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'MlflowError';
  }
}

export interface ClientOptions {
  uri: string;
  /** Retries after the first attempt on network errors, 5xx and 429 (default 4). */
  retries?: number;
  /** First backoff delay in ms, doubled per retry (default 250). */
  backoffMs?: number;
  /** Per-attempt timeout in ms (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Headers for MLflow's usual credentials: a bearer token, or user name and password. */
export function authHeader(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD !== undefined) {
    return `Basic ${Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}`;
  }
  return null;
}

/** The URI without user info, for messages. */
export function safeUri(uri: string): string {
  return splitCredentials(uri).uri.replace(/\/$/, '');
}

/** Splits one batch into requests within MLflow's log-batch limits (count and body size). */
export function splitBatch(batch: {
  metrics?: Metric[];
  params?: KeyValue[];
  tags?: KeyValue[];
}): { metrics: Metric[]; params: KeyValue[]; tags: KeyValue[] }[] {
  const out: { metrics: Metric[]; params: KeyValue[]; tags: KeyValue[] }[] = [];
  let cur = { metrics: [] as Metric[], params: [] as KeyValue[], tags: [] as KeyValue[] };
  let bytes = 0;
  const budget = LIMITS.bytes - 10_000;
  const push = (kind: 'metrics' | 'params' | 'tags', item: Metric | KeyValue) => {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    const count = cur.metrics.length + cur.params.length + cur.tags.length;
    if (cur[kind].length >= LIMITS[kind] || count >= LIMITS.total || bytes + size > budget) {
      out.push(cur);
      cur = { metrics: [], params: [], tags: [] };
      bytes = 0;
    }
    (cur[kind] as (Metric | KeyValue)[]).push(item);
    bytes += size;
  };
  for (const p of batch.params ?? []) push('params', p);
  for (const t of batch.tags ?? []) push('tags', t);
  for (const m of batch.metrics ?? []) push('metrics', m);
  if (cur.metrics.length + cur.params.length + cur.tags.length > 0) out.push(cur);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MlflowClient {
  readonly uri: string;
  private readonly auth: string | null;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;
  /** Requests sent (each retry counts), for tests and diagnostics. */
  requests = 0;

  constructor(opts: ClientOptions) {
    const u = new URL(opts.uri);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new MlflowError(`tracking URI must be http(s)://…, got '${safeUri(opts.uri)}'`, null, null, false);
    this.auth =
      authHeader(opts.env) ??
      (u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : null);
    u.username = '';
    u.password = '';
    this.uri = u.toString().replace(/\/+$/, '');
    this.retries = opts.retries ?? 4;
    this.backoffMs = opts.backoffMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** One HTTP call with retries; JSON in, JSON (or raw bytes) out. */
  async request(method: string, path: string, body?: unknown, raw?: { bytes: Buffer; contentType: string }): Promise<unknown>;
  async request(method: string, path: string, body: unknown, raw: undefined, binary: true): Promise<Buffer>;
  async request(method: string, path: string, body?: unknown, raw?: { bytes: Buffer; contentType: string }, binary = false): Promise<unknown> {
    const url = `${this.uri}${path}`;
    const headers: Record<string, string> = {};
    if (this.auth) headers.authorization = this.auth;
    let payload: string | Buffer | undefined;
    if (raw) {
      headers['content-type'] = raw.contentType;
      payload = raw.bytes;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const what = `MLflow ${method} ${path.replace(/\?.*$/, '')}`;
    let last: MlflowError | null = null;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5));
      this.requests++;
      let res: Response;
      try {
        // A large upload (a model at paper scale is hundreds of MiB) gets a second per MiB on top.
        const timeout = this.timeoutMs + (raw ? Math.ceil(raw.bytes.length / 2 ** 20) * 1000 : 0);
        res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(timeout) });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        last = new MlflowError(`${what}: cannot reach ${this.uri} (${cause?.code ?? cause?.message ?? (err as Error).message})`, null, null, true);
        continue;
      }
      const buf = Buffer.from(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
      if (res.ok) {
        if (binary) return buf;
        if (buf.length === 0) return {};
        try {
          return JSON.parse(buf.toString('utf8'));
        } catch {
          throw new MlflowError(
            `${what}: the server answered HTTP ${res.status} with a body that is not JSON: ${snippet(buf)} — is ${this.uri} an MLflow tracking server?`,
            res.status,
            null,
            false,
          );
        }
      }
      let code: string | null = null;
      let message = snippet(buf);
      try {
        const j = JSON.parse(buf.toString('utf8')) as { error_code?: string; message?: string; detail?: unknown };
        code = j.error_code ?? null;
        message = j.message ?? (j.detail !== undefined ? JSON.stringify(j.detail) : message);
      } catch {
        // not JSON: keep the text snippet
      }
      const retryable = res.status >= 500 || res.status === 429;
      const hint = res.status === 401 || res.status === 403 ? ' (set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)' : '';
      last = new MlflowError(`${what}: HTTP ${res.status}${code ? ` ${code}` : ''}: ${message}${hint}`, res.status, code, retryable);
      if (!retryable) throw last;
    }
    throw last!;
  }

  async getExperimentByName(name: string): Promise<string | null> {
    try {
      const r = (await this.request('GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`)) as {
        experiment: { experiment_id: string };
      };
      return r.experiment.experiment_id;
    } catch (err) {
      if (err instanceof MlflowError && err.code === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw err;
    }
  }

  /** The experiment's id, creating it when absent (tolerates a concurrent creation). */
  async getOrCreateExperiment(name: string): Promise<string> {
    const id = await this.getExperimentByName(name);
    if (id) return id;
    try {
      const r = (await this.request('POST', '/api/2.0/mlflow/experiments/create', { name })) as { experiment_id: string };
      return r.experiment_id;
    } catch (err) {
      if (err instanceof MlflowError && err.code === 'RESOURCE_ALREADY_EXISTS') {
        const again = await this.getExperimentByName(name);
        if (again) return again;
      }
      throw err;
    }
  }

  async createRun(req: { experiment_id: string; run_name?: string; start_time: number; tags: KeyValue[] }): Promise<RunInfoMlflow> {
    const r = (await this.request('POST', '/api/2.0/mlflow/runs/create', req)) as { run: { info: RunInfoMlflow } };
    return r.run.info;
  }

  async getRun(runId: string): Promise<MlflowRun> {
    const r = (await this.request('GET', `/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`)) as { run: MlflowRun };
    return r.run;
  }

  async updateRun(runId: string, status: string, endTime?: number): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/update', { run_id: runId, status, ...(endTime !== undefined ? { end_time: endTime } : {}) });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/set-tag', { run_id: runId, key, value });
  }

  /** Logs metrics, params and tags in as many requests as MLflow's limits need; returns that count. */
  async logBatch(runId: string, batch: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): Promise<number> {
    const parts = splitBatch(batch);
    for (const p of parts) await this.request('POST', '/api/2.0/mlflow/runs/log-batch', { run_id: runId, ...p });
    return parts.length;
  }

  /** Every run matching the filter (follows page tokens). */
  async searchRuns(experimentIds: string[], filter = '', orderBy: string[] = [], max = Infinity): Promise<MlflowRun[]> {
    const runs: MlflowRun[] = [];
    let token: string | undefined;
    do {
      const r = (await this.request('POST', '/api/2.0/mlflow/runs/search', {
        experiment_ids: experimentIds,
        filter,
        order_by: orderBy,
        max_results: Math.min(1000, max - runs.length),
        ...(token ? { page_token: token } : {}),
      })) as { runs?: MlflowRun[]; next_page_token?: string };
      runs.push(...(r.runs ?? []));
      token = r.next_page_token || undefined;
    } while (token && runs.length < max);
    return runs;
  }

  async metricHistory(runId: string, key: string): Promise<Metric[]> {
    const out: Metric[] = [];
    let token: string | undefined;
    do {
      const r = (await this.request(
        'GET',
        `/api/2.0/mlflow/metrics/get-history?run_id=${encodeURIComponent(runId)}&metric_key=${encodeURIComponent(key)}&max_results=25000${token ? `&page_token=${encodeURIComponent(token)}` : ''}`,
      )) as { metrics?: Metric[]; next_page_token?: string };
      out.push(...(r.metrics ?? []));
      token = r.next_page_token || undefined;
    } while (token);
    return out;
  }

  /** Logs datasets as the run's inputs (MLflow ≥ 2.4). */
  async logInputs(runId: string, datasets: { dataset: DatasetMlflow; tags: KeyValue[] }[]): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/log-inputs', { run_id: runId, datasets });
  }

  /** The server's MLflow version (`3.1.0`), or null when it does not say. */
  async serverVersion(): Promise<string | null> {
    try {
      const text = (await this.request('GET', '/version', undefined, undefined, true)).toString('utf8').trim();
      return /^\d+\.\d+/.test(text) ? text : null;
    } catch (err) {
      if (err instanceof MlflowError && !err.retryable) return null;
      throw err;
    }
  }

  /**
   * Creates an MLflow 3 logged model; null when the server has no such API (MLflow 2: HTTP 404),
   * so that the caller logs the model as run artifacts instead.
   */
  async createLoggedModel(req: {
    experiment_id: string;
    name: string;
    source_run_id: string;
    params?: KeyValue[];
    tags?: KeyValue[];
    model_type?: string;
  }): Promise<LoggedModelMlflow | null> {
    try {
      const r = (await this.request('POST', '/api/2.0/mlflow/logged-models', req)) as { model: LoggedModelMlflow };
      return r.model;
    } catch (err) {
      if (err instanceof MlflowError && (err.status === 404 || err.code === 'ENDPOINT_NOT_FOUND')) return null;
      throw err;
    }
  }

  /** Logged models of experiments matching a filter (`name = 'model' AND source_run_id = '…'`); null without the API (MLflow 2). */
  async searchLoggedModels(experimentIds: string[], filter = ''): Promise<LoggedModelMlflow[] | null> {
    const models: LoggedModelMlflow[] = [];
    let token: string | undefined;
    try {
      do {
        const r = (await this.request('POST', '/api/2.0/mlflow/logged-models/search', {
          experiment_ids: experimentIds,
          filter,
          max_results: 100,
          ...(token ? { page_token: token } : {}),
        })) as { models?: LoggedModelMlflow[]; next_page_token?: string };
        models.push(...(r.models ?? []));
        token = r.next_page_token || undefined;
      } while (token);
    } catch (err) {
      if (err instanceof MlflowError && (err.status === 404 || err.code === 'ENDPOINT_NOT_FOUND')) return null;
      throw err;
    }
    return models;
  }

  /** Marks a logged model's files as completely uploaded. */
  async finalizeLoggedModel(modelId: string): Promise<void> {
    await this.request('PATCH', `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`, { model_id: modelId, status: 'LOGGED_MODEL_READY' });
  }

  /** Records logged models as outputs of a run (what the UI lists under the run's models). */
  async logOutputs(runId: string, models: { model_id: string; step: number }[]): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/outputs', { run_id: runId, models });
  }

  /** Creates a registered model; an existing one of that name is kept. */
  async ensureRegisteredModel(name: string, description?: string): Promise<void> {
    try {
      await this.request('POST', '/api/2.0/mlflow/registered-models/create', { name, ...(description ? { description } : {}) });
    } catch (err) {
      if (err instanceof MlflowError && err.code === 'RESOURCE_ALREADY_EXISTS') return;
      throw err;
    }
  }

  async searchModelVersions(filter: string): Promise<ModelVersionMlflow[]> {
    const r = (await this.request('GET', `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent(filter)}&max_results=1000`)) as {
      model_versions?: ModelVersionMlflow[];
    };
    return r.model_versions ?? [];
  }

  async createModelVersion(req: {
    name: string;
    source: string;
    run_id: string;
    model_id?: string;
    description?: string;
    tags?: KeyValue[];
  }): Promise<ModelVersionMlflow> {
    const r = (await this.request('POST', '/api/2.0/mlflow/model-versions/create', req)) as { model_version: ModelVersionMlflow };
    return r.model_version;
  }

  /** Path of a run's artifact under the proxy, from its artifact URI (mlflow-artifacts:/<exp>/<run>/artifacts). */
  artifactPath(run: Pick<RunInfoMlflow, 'artifact_uri' | 'experiment_id' | 'run_id'>, name: string): string {
    let root = `${run.experiment_id}/${run.run_id}/artifacts`;
    const uri = run.artifact_uri ?? '';
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(uri);
    if (m) root = m[1]!.replace(/\/+$/, '');
    else if (uri) {
      throw new MlflowError(
        `run ${run.run_id} stores artifacts at '${uri}', which this client cannot write; start the server with --serve-artifacts (MLflow ≥ 2 does by default) and a new experiment`,
        null,
        null,
        false,
      );
    }
    return `/api/2.0/mlflow-artifacts/artifacts/${root.split('/').map(encodeURIComponent).join('/')}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async uploadArtifact(run: Pick<RunInfoMlflow, 'artifact_uri' | 'experiment_id' | 'run_id'>, name: string, bytes: Buffer): Promise<void> {
    await this.request('PUT', this.artifactPath(run, name), undefined, { bytes, contentType: contentType(name) });
  }

  async downloadArtifact(run: Pick<RunInfoMlflow, 'artifact_uri' | 'experiment_id' | 'run_id'>, name: string): Promise<Buffer> {
    return this.request('GET', this.artifactPath(run, name), undefined, undefined, true);
  }
}

function contentType(name: string): string {
  if (name.endsWith('.json')) return 'application/json';
  if (name.endsWith('.png')) return 'image/png';
  if (name.endsWith('.md') || name.endsWith('.txt') || name.endsWith('.jsonl') || name.endsWith('.yaml') || name.endsWith('MLmodel')) return 'text/plain';
  return 'application/octet-stream';
}

function snippet(buf: Buffer): string {
  const t = buf
    .toString('utf8')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t || '(empty body)';
}
