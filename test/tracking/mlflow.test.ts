import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { MlflowClient, splitBatch, type Metric, type MlflowRun } from '../../src/tracking/client.ts';
import { readTrackedRun } from '../../src/tracking/compare.ts';
import { findOutboxes, flattenParams, readOutbox } from '../../src/tracking/outbox.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';
import { freePort, startMlflow, type MlflowServer } from './server.ts';

const ssfer = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'tiny-run.yaml');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [ssfer, ...args], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { ...process.env, MLFLOW_TRACKING_URI: '', ...env },
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tag = (r: MlflowRun, k: string) => r.data.tags?.find((t) => t.key === k)?.value;
const metricOf = (r: MlflowRun, k: string) => r.data.metrics?.find((m) => m.key === k)?.value;

/** An experiment's runs: the parents (one per ssfer run), their children (one per cell) and the cells' children (one per seed). */
async function runsOf(
  client: MlflowClient,
  experiment: string,
): Promise<{ parents: MlflowRun[]; children: MlflowRun[]; cells: MlflowRun[]; seeds: MlflowRun[] }> {
  const exp = await client.getExperimentByName(experiment);
  if (!exp) return { parents: [], children: [], cells: [], seeds: [] };
  const all = await client.searchRuns([exp]);
  return {
    parents: all.filter((r) => !tag(r, 'mlflow.parentRunId')),
    children: all.filter((r) => tag(r, 'mlflow.parentRunId')),
    cells: all.filter((r) => tag(r, 'ssfer_kind') === 'cell'),
    seeds: all.filter((r) => tag(r, 'ssfer_kind') === 'seed'),
  };
}

describe('MLflow tracking (real server)', function () {
  let server: MlflowServer;
  let client: MlflowClient;

  before(async function () {
    server = await startMlflow();
    client = new MlflowClient({ uri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  it('records a run: one parent, a nested run per cell and under it one per seed, with params, metric history and artifacts', async () => {
    const out = tempDir();
    const r = cli([
      'run',
      recipe,
      '--backend',
      'cpu',
      '--tracking',
      'mlflow',
      '--tracking-uri',
      server.uri,
      '--set',
      'tracking.experiment=e2e',
      '--set',
      'tracking.every=1',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    const { parents, children, cells, seeds } = await runsOf(client, 'e2e');
    expect(parents).to.have.length(1);
    expect(children).to.have.length(8);
    expect(cells).to.have.length(4);
    expect(seeds).to.have.length(4);
    const parent = parents[0]!;
    expect(parent.info.status).to.equal('FINISHED');
    expect(parent.info.end_time).to.be.a('number');
    const ptags = Object.fromEntries(parent.data.tags!.map((t) => [t.key, t.value]));
    expect(ptags).to.include({ recipe: 'tiny-run', scale: 'small', backend: 'cpu', seed: '11', seeds: '1' });
    expect(ptags['mlflow.source.name']).to.contain('tiny-run.yaml');
    const table = JSON.parse((await client.downloadArtifact(parent.info, 'table.json')).toString()) as { cells: unknown[] };
    expect(table.cells).to.have.length(4);
    for (const cell of cells) {
      // The cell's own run: its settings but the seed, and its figures over the seeds.
      expect(cell.info.status).to.equal('FINISHED');
      expect(tag(cell, 'mlflow.parentRunId')).to.equal(parent.info.run_id);
      expect(tag(cell, 'mlflow.runName')).to.match(/^mixing=/);
      expect(tag(cell, 'seeds')).to.equal('1');
      const params = Object.fromEntries(cell.data.params!.map((p) => [p.key, p.value]));
      expect(params['pipeline.supervised.lr']).to.equal('0.001');
      expect(params).to.not.have.property('seed');
      const [seed] = seeds.filter((s) => tag(s, 'mlflow.parentRunId') === cell.info.run_id);
      expect(seed, tag(cell, 'cell')).to.not.equal(undefined);
      expect(metricOf(cell, 'test_accuracy')).to.equal(metricOf(seed!, 'test_accuracy'));
      expect(metricOf(cell, 'seeds_finished')).to.equal(1);
      expect(metricOf(cell, 'test_accuracy_std'), 'one seed has no std').to.equal(undefined);
      expect(metricOf(cell, 'health.supervised_accuracy')).to.equal(metricOf(seed!, 'health.supervised_accuracy'));
    }
    for (const c of seeds) {
      expect(c.info.status).to.equal('FINISHED');
      const tags = Object.fromEntries(c.data.tags!.map((t) => [t.key, t.value]));
      expect(cells.map((x) => x.info.run_id)).to.include(tags['mlflow.parentRunId']);
      expect(tags['mlflow.runName']).to.match(/^mixing=.* seed 0$/);
      expect(tags).to.include({ seed: '11', seed_index: '0', ssfer_kind: 'seed' });
      const params = Object.fromEntries(c.data.params!.map((p) => [p.key, p.value]));
      expect(params['pipeline.supervised.lr']).to.equal('0.001');
      expect(params['model.backbone.use']).to.equal('vit');
      expect(params.seed).to.equal('11');
      expect(c.data.metrics!.map((m) => m.key)).to.include('test_accuracy');
      expect(c.data.metrics!.map((m) => m.key)).to.include('health.supervised_accuracy');
      const history = await client.metricHistory(c.info.run_id, 'supervised/loss');
      expect(history.length).to.be.greaterThan(3);
      for (const f of ['metrics.json', 'confusion.png', 'curves.png', 'config.json']) {
        expect((await client.downloadArtifact(c.info, f)).length, f).to.be.greaterThan(0);
      }
    }
    const text = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri]);
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout).to.contain('tiny run fixture').and.contain('FaceMix');
    const json = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri, '--json']);
    const parsed = JSON.parse(json.stdout) as { run_id: string; table: { cells: unknown[] } };
    expect(parsed.run_id).to.equal(parent.info.run_id);
    expect(parsed.table.cells).to.have.length(4);
    const against = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri, '--against', parent.info.run_id, '--json']);
    const diff = JSON.parse(against.stdout) as { cells: { diff: number | null }[] };
    expect(diff.cells).to.have.length(4);
    for (const d of diff.cells) expect(d.diff === null || d.diff === 0).to.equal(true);
  });

  it('keeps training when the server is down, and ssfer sync replays the outbox once', async () => {
    const out = tempDir();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = cli([
      'run',
      recipe,
      '--backend',
      'cpu',
      '--tracking',
      'mlflow',
      '--tracking-uri',
      dead,
      '--set',
      'tracking.experiment=offline',
      '--set',
      'tracking.every=1',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('MLflow tracking paused').and.contain('ssfer sync');
    expect(r.stdout).to.contain('FaceMix');
    const [outbox] = findOutboxes(out);
    expect(outbox).to.be.a('string');
    expect(readOutbox(outbox!).filter((l) => l.type === 'ack')).to.have.length(0);
    expect((await runsOf(client, 'offline')).parents).to.have.length(0);

    const s1 = cli(['sync', path.dirname(outbox!), '--tracking-uri', server.uri]);
    expect(s1.status, s1.stderr).to.equal(0);
    expect(s1.stdout).to.contain('9 runs created');
    const after1 = await runsOf(client, 'offline');
    expect(after1.parents).to.have.length(1);
    expect(after1.children).to.have.length(8);
    for (const c of [...after1.parents, ...after1.children]) expect(c.info.status).to.equal('FINISHED');
    const histories = await Promise.all(after1.seeds.map((c) => client.metricHistory(c.info.run_id, 'supervised/loss')));

    const s2 = cli(['sync', out, '--tracking-uri', server.uri]);
    expect(s2.status, s2.stderr).to.equal(0);
    expect(s2.stdout).to.contain(' 0 calls sent');
    const after2 = await runsOf(client, 'offline');
    expect(after2.parents).to.have.length(1);
    expect(after2.children).to.have.length(8);
    const histories2 = await Promise.all(after2.seeds.map((c) => client.metricHistory(c.info.run_id, 'supervised/loss')));
    expect(histories2.map((h) => h.length).sort()).to.deep.equal(histories.map((h) => h.length).sort());
    expect(histories[0]!.length).to.be.greaterThan(3);
  });

  it('gives each cell of several seeds its mean, std and 95 % interval, and its paired difference, on the cell’s own run', async () => {
    const out = tempDir();
    const r = cli([
      'run',
      path.join(fixtures, 'recipes', 'tiny-seeds.yaml'),
      '--backend',
      'cpu',
      '--json',
      '--tracking',
      'mlflow',
      '--tracking-uri',
      server.uri,
      '--set',
      'tracking.experiment=seeds',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    const table = JSON.parse(r.stdout) as { cells: { id: string; ours: number; ours_std: number; ci95: [number, number]; diff: number | null }[] };
    const { cells, seeds } = await runsOf(client, 'seeds');
    expect(cells).to.have.length(4);
    expect(seeds).to.have.length(12);
    for (const cell of cells) {
      const mine = seeds.filter((s) => tag(s, 'mlflow.parentRunId') === cell.info.run_id);
      expect(mine.map((s) => tag(s, 'seed_index')).sort()).to.deep.equal(['0', '1', '2']);
      expect(mine.map((s) => tag(s, 'seed')).sort()).to.deep.equal(['5', '6', '7']);
      expect(mine.every((s) => tag(s, 'cell') === tag(cell, 'cell'))).to.equal(true);
      const acc = mine.map((s) => metricOf(s, 'test_accuracy')!);
      const mean = acc.reduce((a, b) => a + b, 0) / 3;
      const std = Math.sqrt(acc.reduce((a, b) => a + (b - mean) ** 2, 0) / 2);
      expect(metricOf(cell, 'test_accuracy')).to.be.closeTo(mean, 1e-12);
      expect(metricOf(cell, 'test_accuracy_std')).to.be.closeTo(std, 1e-12);
      // scipy.stats.t.ppf(0.975, 2) = 4.302652729749462.
      expect(metricOf(cell, 'test_accuracy_ci95_low')).to.be.closeTo(mean - (4.302652729749462 * std) / Math.sqrt(3), 1e-9);
      expect(metricOf(cell, 'test_accuracy_ci95_high')).to.be.closeTo(mean + (4.302652729749462 * std) / Math.sqrt(3), 1e-9);
      expect(metricOf(cell, 'seeds_finished')).to.equal(3);
      const row = table.cells.find((c) => c.id === tag(cell, 'cell'))!;
      expect(Math.round(metricOf(cell, 'test_accuracy')! * 10000) / 100).to.equal(row.ours);
      if (row.diff === null) expect(metricOf(cell, 'diff_to_baseline')).to.equal(undefined);
      else expect(Math.round(metricOf(cell, 'diff_to_baseline')! * 10000) / 100).to.equal(row.diff);
    }
  });

  it('rebuilds the table of a run that has no table.json from its cells’ seed runs', async () => {
    const out = tempDir();
    const tracker = new MlflowTracker({ uri: server.uri, experiment: 'rebuilt', every: 1, log: () => {} });
    await tracker.startRun({
      recipe: 'r',
      title: 'a run killed before its table',
      scale: 'smoke',
      seed: 4,
      seeds: 3,
      backend: 'cpu',
      dir: out,
      file: 'r.yaml',
      commit: null,
    });
    // Cell a: three seeds finished (30, 40, 50 %); cell b: seed 0 finished, seed 1 killed.
    const cell = (id: string, k: number) => tracker.startCell({ id, seedIndex: k, config: { seed: 4 + k, seeds: 3, title: 't' } });
    for (const [k, acc] of [0.3, 0.4, 0.5].entries()) {
      await cell('a', k);
      await tracker.endCell({ id: 'a', seedIndex: k }, { metrics: { test_accuracy: acc }, artifacts: [], status: 'FINISHED' });
    }
    await cell('b', 0);
    await tracker.endCell({ id: 'b', seedIndex: 0 }, { metrics: { test_accuracy: 0.2 }, artifacts: [], status: 'FINISHED' });
    await cell('b', 1);
    await tracker.endCell({ id: 'b', seedIndex: 1 }, { metrics: {}, artifacts: [], status: 'KILLED' });
    const { table, children } = await readTrackedRun(client, 'rebuilt');
    expect(children).to.have.length(2);
    expect(table.seeds).to.equal(3);
    expect(table.notes[0]).to.match(/rebuilt from the cells' runs/);
    // 30, 40, 50: mean 40, s 10, 40 ± 4.302653 · 10 / √3.
    expect(table.cells[0]).to.deep.include({ id: 'a', ours: 40, ours_std: 10, ours_runs: [30, 40, 50], ci95: [15.16, 64.84], status: 'done' });
    expect(table.cells[1]).to.deep.include({ id: 'b', ours: null, ours_runs: [20, null, null], ci95: null, status: 'pending' });
  });

  it('splits 2500 metrics into 3 log-batch requests within MLflow limits', async () => {
    const exp = await client.getOrCreateExperiment('batching');
    const run = await client.createRun({ experiment_id: exp, run_name: 'batch', start_time: Date.now(), tags: [] });
    const metrics: Metric[] = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, timestamp: 1_700_000_000_000 + i, step: i }));
    expect(splitBatch({ metrics }).map((p) => p.metrics.length)).to.deep.equal([1000, 1000, 500]);
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'x' }));
    expect(splitBatch({ params }).map((p) => p.params.length)).to.deep.equal([100, 100, 50]);
    const before = client.requests;
    expect(await client.logBatch(run.run_id, { metrics })).to.equal(3);
    expect(client.requests - before).to.equal(3);
    const history = await client.metricHistory(run.run_id, 'm');
    expect(history).to.have.length(2500);
  });

  it('turns MLflow errors and non-JSON answers into clear messages', async () => {
    let err: Error | undefined;
    try {
      await client.updateRun('no-such-run', 'FINISHED');
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/runs\/update: HTTP \d+ RESOURCE_DOES_NOT_EXIST/);
    const long = flattenParams({ a: { b: 'x'.repeat(7000) }, list: [1, 2], 'κ metric': 1 });
    expect(long.find((p) => p.key === 'a.b')!.value)
      .to.have.length(6000)
      .and.match(/truncated]$/);
    expect(long.map((p) => p.key)).to.include('kappa metric');
    const dead = new MlflowClient({ uri: `http://127.0.0.1:${await freePort()}`, retries: 1, backoffMs: 10 });
    let down: Error | undefined;
    try {
      await dead.getExperimentByName('x');
    } catch (e) {
      down = e as Error;
    }
    expect(down?.message).to.contain('cannot reach');
    let html: Error | undefined;
    try {
      await client.request('GET', '/');
    } catch (e) {
      html = e as Error;
    }
    expect(html?.message).to.contain('not JSON');
  });
});
