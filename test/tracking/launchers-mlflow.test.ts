import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { MlflowClient, type MlflowRun } from '../../src/tracking/client.ts';
import { findOutboxes } from '../../src/tracking/outbox.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';
import { freePort, startMlflow, type MlflowServer } from './server.ts';

const ssfer = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'tiny-run.yaml');
/** Four cells sharing one MAE pre-training per seed. */
const stagesRecipe = path.join(fixtures, 'recipes', 'tiny-stages.yaml');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [ssfer, ...args], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tag = (r: MlflowRun, k: string) => r.data.tags?.find((t) => t.key === k)?.value;

/** The parent, cell and seed runs of an experiment, checked to nest: every seed under a cell, every cell under the one parent. */
async function tree(client: MlflowClient, experiment: string) {
  const exp = await client.getExperimentByName(experiment);
  const all = exp ? await client.searchRuns([exp]) : [];
  const parents = all.filter((r) => !tag(r, 'mlflow.parentRunId'));
  const cells = all.filter((r) => tag(r, 'ssfer_kind') === 'cell');
  const seeds = all.filter((r) => tag(r, 'ssfer_kind') === 'seed');
  for (const c of cells) expect(tag(c, 'mlflow.parentRunId')).to.equal(parents[0]?.info.run_id);
  for (const s of seeds) expect(cells.map((c) => c.info.run_id)).to.include(tag(s, 'mlflow.parentRunId'));
  return { all, parents, cells, seeds };
}

/** Every run of an experiment by kind (parent, cell, seed, stage), read back in full (inputs and outputs too). */
async function byKind(client: MlflowClient, experiment: string) {
  const exp = await client.getExperimentByName(experiment);
  const all = await Promise.all((exp ? await client.searchRuns([exp]) : []).map((r) => client.getRun(r.info.run_id)));
  const of = (kind: string) => all.filter((r) => tag(r, 'ssfer_kind') === kind);
  return { all, parents: of('run'), cells: of('cell'), seeds: of('seed'), stages: of('stage') };
}

/** The runs as a structure to compare between launchers: each one's kind, name, parent's kind, tag keys, params, metric keys, inputs, models and status. */
function shape(runs: MlflowRun[]) {
  const byId = new Map(runs.map((r) => [r.info.run_id, r]));
  return runs
    .map((r) => ({
      kind: tag(r, 'ssfer_kind'),
      name: tag(r, 'mlflow.runName')!.replace(/^tiny-stages \S+$/, 'tiny-stages <dir>'),
      parent: byId.get(tag(r, 'mlflow.parentRunId') ?? '') ? tag(byId.get(tag(r, 'mlflow.parentRunId')!)!, 'ssfer_kind') : null,
      tags: (r.data.tags ?? []).map((t) => t.key).sort(),
      params: (r.data.params ?? []).map((p) => `${p.key}=${p.value}`).sort(),
      metrics: (r.data.metrics ?? []).map((m) => m.key).sort(),
      inputs: (r.inputs?.dataset_inputs ?? []).map((d) => `${d.dataset.name} ${d.dataset.digest}`),
      models: (r.outputs?.model_outputs ?? []).length,
      status: r.info.status,
    }))
    .sort((a, b) => `${a.kind} ${a.name}`.localeCompare(`${b.kind} ${b.name}`));
}

const poolArgs = ['--backend', 'cpu', '--launcher', 'processes', '--set', 'launcher.workers=2', '--set', 'launcher.threads_per_worker=1'];

describe('MLflow with a launcher’s workers (real server)', function () {
  this.timeout(600_000);
  let server: MlflowServer;
  let client: MlflowClient;

  before(async () => {
    server = await startMlflow();
    client = new MlflowClient({ uri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  it('keeps one parent run whichever worker logs a seed: the cells’ runs under it, every seed under its cell', async () => {
    const out = tempDir();
    const r = cli(['run', recipe, ...poolArgs, '--tracking', 'mlflow', '--tracking-uri', server.uri, '--set', 'tracking.experiment=pool', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    const { all, parents, cells, seeds } = await tree(client, 'pool');
    expect(parents).to.have.length(1);
    expect(cells).to.have.length(4);
    expect(seeds).to.have.length(4);
    expect(all).to.have.length(9);
    for (const run of all) expect(run.info.status, tag(run, 'mlflow.runName')).to.equal('FINISHED');
    expect(new Set(seeds.map((s) => tag(s, 'cell'))).size).to.equal(4);
    const dir = path.dirname(findOutboxes(out)[0]!);
    const outboxes = fs.readdirSync(dir).filter((f) => f.startsWith('mlflow-outbox'));
    expect(outboxes, 'the run’s outbox and one per worker').to.have.length(3);
    const table = JSON.parse((await client.downloadArtifact(parents[0]!.info, 'table.json')).toString()) as { cells: { ours: number }[] };
    expect(table.cells.map((c) => c.ours)).to.deep.equal(
      JSON.parse(fs.readFileSync(path.join(dir, 'table.json'), 'utf8')).cells.map((c: { ours: number }) => c.ours),
    );
  });

  it('makes the runs inline makes: cells named from the grid, seed runs with their data, curves per stage, model and pre-training, one pre-training run per seed, the best model registered', async () => {
    const common = ['--seeds', '2', '--tracking', 'mlflow', '--tracking-uri', server.uri, '--set', 'tracking.every=1'];
    const inline = cli(['run', stagesRecipe, '--backend', 'cpu', ...common, '--set', 'tracking.experiment=stages-inline', '--out', tempDir()]);
    expect(inline.status, inline.stderr).to.equal(0);
    const out = tempDir();
    const r = cli([
      'run',
      stagesRecipe,
      ...poolArgs,
      ...common,
      '--set',
      'tracking.experiment=stages-pool',
      '--set',
      'tracking.register=ssfer-pool',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/registered the model of cell .* seed 0 .* as 'ssfer-pool' version 1/, r.stderr);

    const pool = await byKind(client, 'stages-pool');
    const want = await byKind(client, 'stages-inline');
    expect([pool.parents.length, pool.cells.length, pool.seeds.length, pool.stages.length]).to.deep.equal([1, 4, 8, 2]);
    expect(shape(pool.all)).to.deep.equal(shape(want.all));
    for (const run of pool.all) expect(run.info.status, tag(run, 'mlflow.runName')).to.equal('FINISHED');

    const parent = pool.parents[0]!.info.run_id;
    for (const pre of pool.stages) {
      expect(tag(pre, 'mlflow.parentRunId')).to.equal(parent);
      // Computed by one worker under its lease: its curve once, each stage counting from 1.
      expect((await client.metricHistory(pre.info.run_id, 'pretrain/loss')).map((m) => m.step)).to.deep.equal([1, 2]);
      expect(pre.data.metrics?.map((m) => m.key)).to.include('pretrain_loss_last');
    }
    for (const s of pool.seeds) {
      const pre = pool.stages.find((x) => tag(x, 'seed_index') === tag(s, 'seed_index'))!;
      expect(tag(s, 'pretrain_run_id'), tag(s, 'mlflow.runName')).to.equal(pre.info.run_id);
      expect(tag(s, 'pretrain_key')).to.equal(tag(pre, 'stage_key'));
      expect(pool.cells.map((c) => c.info.run_id)).to.include(tag(s, 'mlflow.parentRunId'));
      expect((await client.metricHistory(s.info.run_id, 'supervised/loss'))[0]?.step).to.equal(1);
      expect(s.inputs?.dataset_inputs).to.have.length(1);
      expect(s.outputs?.model_outputs, 'its model').to.have.length(1);
    }
    const versions = await client.searchModelVersions(`name = 'ssfer-pool'`);
    expect(versions).to.have.length(1);
    expect(pool.seeds.map((s) => s.info.run_id)).to.include(versions[0]!.run_id);

    // Each pre-training run was created once and ended once, claimed in the run folder.
    const dir = path.dirname(findOutboxes(out)[0]!);
    const claims = fs.readdirSync(path.join(dir, 'mlflow-claims')).flatMap((s) => fs.readdirSync(path.join(dir, 'mlflow-claims', s)));
    expect(claims.filter((c) => c.endsWith('.created'))).to.have.length(2);
    expect(claims.filter((c) => c.endsWith('.ended'))).to.have.length(2);
    const again = cli(['sync', dir]);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stdout.match(/ 0 calls sent/g)).to.have.length(findOutboxes(dir).length);
  });

  it('sends the run’s and every worker’s outbox with ssfer sync when the server was down, once: the pre-training run one worker made, the model another logged', async () => {
    const out = tempDir();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = cli([
      'run',
      stagesRecipe,
      ...poolArgs,
      '--tracking',
      'mlflow',
      '--tracking-uri',
      dead,
      '--set',
      'tracking.experiment=pool-offline',
      '--set',
      'tracking.register=ssfer-offline',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).to.equal(0);
    const files = findOutboxes(out);
    expect(files).to.have.length(3);
    expect(path.basename(files[0]!), 'the run’s own outbox first').to.equal('mlflow-outbox.jsonl');
    expect((await tree(client, 'pool-offline')).all).to.have.length(0);

    const s1 = cli(['sync', path.dirname(files[0]!), '--tracking-uri', server.uri]);
    expect(s1.status, s1.stderr).to.equal(0);
    const first = await tree(client, 'pool-offline');
    expect(first.parents).to.have.length(1);
    expect(first.cells).to.have.length(4);
    expect(first.seeds).to.have.length(4);
    const stages = first.all.filter((x) => tag(x, 'ssfer_kind') === 'stage');
    expect(stages, 'one pre-training run, whichever worker computed it').to.have.length(1);
    for (const s of first.seeds) expect(tag(s, 'pretrain_run_id')).to.equal(stages[0]!.info.run_id);
    for (const run of first.all) expect(run.info.status).to.equal('FINISHED');
    const versions = await client.searchModelVersions(`name = 'ssfer-offline'`);
    expect(versions, 'the best model, logged in a worker’s outbox').to.have.length(1);
    expect(first.seeds.map((s) => s.info.run_id)).to.include(versions[0]!.run_id);

    const s2 = cli(['sync', out, '--tracking-uri', server.uri]);
    expect(s2.status, s2.stderr).to.equal(0);
    expect(s2.stdout.match(/ 0 calls sent/g)).to.have.length(3);
    expect((await tree(client, 'pool-offline')).all).to.have.length(10);
    expect(await client.searchModelVersions(`name = 'ssfer-offline'`)).to.have.length(1);
  });
});
