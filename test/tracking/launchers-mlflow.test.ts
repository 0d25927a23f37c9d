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

  it('sends the run’s and every worker’s outbox with ssfer sync when the server was down, once', async () => {
    const out = tempDir();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = cli(['run', recipe, ...poolArgs, '--tracking', 'mlflow', '--tracking-uri', dead, '--set', 'tracking.experiment=pool-offline', '--out', out]);
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
    for (const run of first.all) expect(run.info.status).to.equal('FINISHED');

    const s2 = cli(['sync', out, '--tracking-uri', server.uri]);
    expect(s2.status, s2.stderr).to.equal(0);
    expect(s2.stdout.match(/ 0 calls sent/g)).to.have.length(3);
    expect((await tree(client, 'pool-offline')).all).to.have.length(9);
  });
});
