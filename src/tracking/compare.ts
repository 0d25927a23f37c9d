import { estimate } from '../report/stats.ts';
import type { Table, TableCell } from '../report/table.ts';
import { MlflowClient, MlflowError, type MlflowRun } from './client.ts';

/** A parent run read back from MLflow: its table and its cells' runs (not its shared stages'). */
export interface TrackedRun {
  run: MlflowRun;
  children: MlflowRun[];
  table: Table;
}

const tag = (r: MlflowRun, key: string) => r.data.tags?.find((t) => t.key === key)?.value;
const metric = (r: MlflowRun, key: string) => r.data.metrics?.find((m) => m.key === key)?.value;

/** The latest parent run of an experiment, or the named one, with its children (the cells' runs) and table. */
export async function readTrackedRun(client: MlflowClient, experiment: string, runId?: string): Promise<TrackedRun> {
  const expId = await client.getExperimentByName(experiment);
  if (!expId) throw new MlflowError(`no MLflow experiment named '${experiment}' at ${client.uri}`, null, 'RESOURCE_DOES_NOT_EXIST', false);
  let run: MlflowRun | undefined;
  if (runId) run = await client.getRun(runId);
  else run = (await client.searchRuns([expId], "tags.ssfer_kind = 'run'", ['attributes.start_time DESC'], 1))[0];
  if (!run) throw new MlflowError(`experiment '${experiment}' has no ssfer runs yet`, null, null, false);
  // The parent's nested runs are its cells' and its shared stages' (a seed's pre-training): the cells' only.
  const children = (await client.searchRuns([run.info.experiment_id], `tags.mlflow.parentRunId = '${run.info.run_id}'`)).filter(
    (c) => tag(c, 'ssfer_kind') !== 'stage',
  );
  let table: Table;
  try {
    table = JSON.parse((await client.downloadArtifact(run.info, 'table.json')).toString('utf8')) as Table;
  } catch {
    table = await tableFromChildren(client, run, children);
  }
  return { run, children, table };
}

/**
 * Without a table.json (a run still going, or killed): one row per cell, from its seeds' runs
 * (each seed's test accuracy, the mean ± std once every seed has one). Runs of versions before
 * seeds have no seed runs: the cell's own test accuracy is its one seed.
 */
async function tableFromChildren(client: MlflowClient, run: MlflowRun, children: MlflowRun[]): Promise<Table> {
  const sorted = [...children].sort((a, b) => (a.info.start_time ?? 0) - (b.info.start_time ?? 0));
  const pct = (a: number | undefined) => (a === undefined ? null : a * 100);
  const round2 = (x: number) => Math.round(x * 100) / 100;
  let seeds = 1;
  const cells: TableCell[] = [];
  for (const c of sorted) {
    const seedRuns = await client.searchRuns([run.info.experiment_id], `tags.mlflow.parentRunId = '${c.info.run_id}'`);
    const expected = Math.max(Number(tag(c, 'seeds') ?? 1), ...seedRuns.map((r) => Number(tag(r, 'seed_index') ?? 0) + 1));
    seeds = Math.max(seeds, expected);
    const runs = seedRuns.length
      ? Array.from({ length: expected }, (_, k) => {
          const seedRun = seedRuns.find((r) => Number(tag(r, 'seed_index')) === k);
          return seedRun ? pct(metric(seedRun, 'test_accuracy')) : null;
        })
      : [pct(metric(c, 'test_accuracy'))];
    const failed = [c, ...seedRuns].some((r) => r.info.status === 'FAILED');
    const done = runs.every((v) => v !== null);
    const e = done ? estimate(runs as number[], [0, 100]) : null;
    const id = tag(c, 'cell') ?? c.info.run_name ?? c.info.run_id;
    cells.push({
      id,
      row: id,
      column: 'accuracy',
      ours: e ? round2(e.mean) : null,
      ours_std: e?.std != null ? round2(e.std) : null,
      ours_runs: runs.map((v) => (v === null ? null : round2(v))),
      ci95: e?.ci95 ? [round2(e.ci95[0]), round2(e.ci95[1])] : null,
      paper: null,
      status: failed ? 'failed' : done ? 'done' : 'pending',
    });
  }
  return {
    recipe: tag(run, 'recipe') ?? '',
    title: tag(run, 'title') ?? run.info.run_name ?? run.info.run_id,
    scale: tag(run, 'scale') ?? '',
    seed: Number(tag(run, 'seed') ?? 0),
    seeds,
    backend: tag(run, 'backend') ?? '',
    metric: 'accuracy (%)',
    notes: ["rebuilt from the cells' runs (the run has no table.json yet)"],
    rowTitle: 'Cell',
    columnHeaders: [['accuracy']],
    rows: cells.map((c) => c.id),
    cells,
  };
}

export interface CellDiff {
  id: string;
  row: string;
  column: string;
  a: number | null;
  b: number | null;
  diff: number | null;
}

/** Cell-by-cell difference of two tables (matched by cell id). */
export function diffTables(a: Table, b: Table): CellDiff[] {
  const byId = new Map(b.cells.map((c) => [c.id, c]));
  const ids = [...a.cells.map((c) => c.id), ...b.cells.filter((c) => !a.cells.some((x) => x.id === c.id)).map((c) => c.id)];
  return ids.map((id) => {
    const x = a.cells.find((c) => c.id === id);
    const y = byId.get(id);
    const av = x?.ours ?? null;
    const bv = y?.ours ?? null;
    return { id, row: (x ?? y)!.row, column: (x ?? y)!.column, a: av, b: bv, diff: av !== null && bv !== null ? Math.round((av - bv) * 100) / 100 : null };
  });
}

export function diffText(diffs: CellDiff[], aName: string, bName: string): string {
  const f = (v: number | null) => (v === null ? '—' : v.toFixed(2));
  const rows = diffs.map((d) => [`${d.row} · ${d.column}`, f(d.a), f(d.b), d.diff === null ? '—' : `${d.diff >= 0 ? '+' : ''}${d.diff.toFixed(2)}`]);
  const all = [['cell', aName, bName, 'difference'], ...rows];
  const w = [0, 1, 2, 3].map((j) => Math.max(...all.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((v, j) => (j === 0 ? v.padEnd(w[j]!) : v.padStart(w[j]!))).join('  ');
  return `${[line(all[0]!), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')}\n`;
}
