import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { loadModelBundle } from '../../src/model/bundle.ts';
import { cellFolder } from '../../src/pipeline/results.ts';
import { MlflowClient, splitBatch, type Metric, type MlflowRun } from '../../src/tracking/client.ts';
import { readTrackedRun } from '../../src/tracking/compare.ts';
import { findOutboxes, flattenParams, readOutbox, type Line } from '../../src/tracking/outbox.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';
import { venvPython } from '../export/python.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';
import { freePort, startMlflow, type MlflowServer } from './server.ts';

const ssfer = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'tiny-run.yaml');
const stagesRecipe = path.join(fixtures, 'recipes', 'tiny-stages.yaml');
const seedsRecipe = path.join(fixtures, 'recipes', 'tiny-seeds.yaml');
/** Keys of a cell's config that are not its own settings, and must not be params. */
const NOT_SETTINGS = ['scales', 'grid', 'reference', 'tracking', 'launcher', 'title', 'description'];

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

/**
 * An experiment's runs: the parents (one per ssfer run), every nested run, the cells' runs (one
 * per cell, under a parent), the seeds' runs (one per seed, under its cell's) and the shared stages'.
 */
async function runsOf(
  client: MlflowClient,
  experiment: string,
): Promise<{ parents: MlflowRun[]; children: MlflowRun[]; cells: MlflowRun[]; seeds: MlflowRun[]; stages: MlflowRun[] }> {
  const exp = await client.getExperimentByName(experiment);
  if (!exp) return { parents: [], children: [], cells: [], seeds: [], stages: [] };
  const all = await client.searchRuns([exp]);
  return {
    parents: all.filter((r) => !tag(r, 'mlflow.parentRunId')),
    children: all.filter((r) => tag(r, 'mlflow.parentRunId')),
    cells: all.filter((r) => tag(r, 'ssfer_kind') === 'cell'),
    seeds: all.filter((r) => tag(r, 'ssfer_kind') === 'seed'),
    stages: all.filter((r) => tag(r, 'ssfer_kind') === 'stage'),
  };
}

const tagsOf = (r: { data: { tags?: { key: string; value: string }[] } }) => Object.fromEntries((r.data.tags ?? []).map((t) => [t.key, t.value]));

interface Checked {
  runs: {
    run_id: string;
    name: string;
    status: string;
    tags: Record<string, string>;
    params: Record<string, string>;
    metrics: Record<string, number>;
    inputs: { name: string; digest: string; source_type: string; source: Record<string, unknown>; profile: Record<string, unknown>; context: string }[];
    outputs: string[];
  }[];
  logged_models: { model_id: string; name: string; source_run_id: string; status: string; metrics: { key: string; value: number; dataset_name: string }[] }[];
  predictions: {
    run_id: string;
    logits: number[][];
    inputs: number[][];
    outputs: number[][];
    metadata: { classes: string[] };
    flavors: string[];
    onnx_inputs: string[];
  }[];
  versions: { version: string; run_id: string; source: string; description: string; loads?: string[] }[];
}

/** The experiment as MLflow's Python client reads it, with what pyfunc's model of each `load` run predicts. */
function pythonCheck(
  uri: string,
  experiment: string,
  load: { run_id: string; input: string; shape: number[] }[] = [],
  registered: string | null = null,
): Checked {
  const job = path.join(tempDir(), 'job.json');
  fs.writeFileSync(job, JSON.stringify({ uri, experiment, load, registered }));
  const r = spawnSync(venvPython(), [path.join(projectRoot, 'test', 'tracking', 'mlflow_check.py'), job], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, MLFLOW_TRACKING_URI: '', DO_NOT_TRACK: 'true', MLFLOW_DISABLE_TELEMETRY: 'true' },
  });
  if (r.status !== 0) throw new Error(`mlflow_check.py failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Checked;
}

/** Every op of an outbox acknowledged exactly once. */
function acknowledgedOnce(lines: Line[]): boolean {
  const ops = lines.filter((l) => l.type === 'op').map((l) => l.id);
  const acks = lines.filter((l) => l.type === 'ack').map((l) => l.id);
  return acks.length === ops.length && new Set(acks).size === acks.length && ops.every((id) => acks.includes(id));
}

function latestRun(out: string, name: string): string {
  const base = path.join(out, name);
  return path.join(base, fs.readdirSync(base).sort().pop()!);
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

  describe('a run as MLflow’s users see it', () => {
    let out: string;
    let checked: Checked;
    let cells: Checked['runs'];
    let seeds: Checked['runs'];
    let parent: Checked['runs'][number];
    let images: string;
    const shape = [3, 16, 16, 3];
    /** A seed run's cell run. */
    const cellOf = (seed: Checked['runs'][number]) => cells.find((c) => c.run_id === seed.tags['mlflow.parentRunId'])!;

    before(async () => {
      out = tempDir();
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
        '--set',
        'tracking.register=ssfer-e2e',
        '--set',
        'description=Two methods at two label budgets, for the tracking test.',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/registered the model of cell .* seed 0 .* as 'ssfer-e2e' version 1/);
      const { seeds: seedRuns } = await runsOf(client, 'e2e');
      images = path.join(tempDir(), 'images.f32');
      const pixels = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => ((i * 7919) % 1000) / 1000);
      fs.writeFileSync(images, Buffer.from(pixels.buffer));
      checked = pythonCheck(
        server.uri,
        'e2e',
        seedRuns.map((c) => ({ run_id: c.info.run_id, input: images, shape })),
        'ssfer-e2e',
      );
      cells = checked.runs.filter((x) => x.tags.ssfer_kind === 'cell');
      seeds = checked.runs.filter((x) => x.tags.ssfer_kind === 'seed');
      parent = checked.runs.find((x) => x.tags.ssfer_kind === 'run')!;
    });

    it('one parent, a nested run per cell named from the grid labels with the axes as tags, and under each one run per seed', () => {
      expect(checked.runs).to.have.length(9);
      expect(cells).to.have.length(4);
      expect(seeds).to.have.length(4);
      expect(cells.map((c) => c.name).sort()).to.deep.equal(['FaceMix · 25%', 'FaceMix · 50%', 'None · 25%', 'None · 50%']);
      for (const c of [parent, ...cells, ...seeds]) expect(c.status).to.equal('FINISHED');
      expect(parent.tags).to.include({ seed: '11', seeds: '1' });
      for (const c of cells) {
        expect(c.tags['mlflow.parentRunId']).to.equal(parent.run_id);
        expect(c.tags.mixing).to.be.oneOf(['none', 'facemix']);
        expect(c.tags.labels).to.be.oneOf(['0.25', '0.5']);
        expect(c.tags.cell).to.equal(`mixing=${c.tags.mixing}/labels=${c.tags.labels}`);
        expect(c.tags.seeds).to.equal('1');
      }
      for (const s of seeds) {
        const cell = cellOf(s);
        expect(cell, s.name).to.not.equal(undefined);
        expect(s.name).to.equal(`${cell.name} · seed 0`);
        expect(s.tags).to.include({
          cell: cell.tags.cell,
          seed: '11',
          seed_index: '0',
          ssfer_kind: 'seed',
          mixing: cell.tags.mixing,
          labels: cell.tags.labels,
        });
      }
      expect(new Set(seeds.map((s) => s.tags['mlflow.parentRunId'])).size).to.equal(4);
    });

    it('every run carries mlflow.user and its source; the parent the recipe’s description and the table’s summary', () => {
      for (const r of checked.runs) {
        expect(r.tags['mlflow.user'], r.name).to.be.a('string').and.not.equal('');
        expect(r.tags['mlflow.source.name'], r.name).to.contain('tiny-run.yaml');
        expect(r.tags['mlflow.source.type'], r.name).to.equal('LOCAL');
      }
      expect(parent.tags['mlflow.note.content']).to.equal('Two methods at two label budgets, for the tracking test.');
      expect(parent.tags).to.include({ recipe: 'tiny-run', scale: 'small', backend: 'cpu' });
      // The cells' means over their seeds (one seed here: its own accuracy).
      const accuracies = cells.map((c) => c.metrics.test_accuracy!);
      expect(parent.metrics.cells_finished).to.equal(4);
      expect(parent.metrics.cells_failed).to.equal(0);
      // The table rounds each accuracy to 0.01 %.
      expect(parent.metrics.mean_test_accuracy).to.be.closeTo(accuracies.reduce((a, b) => a + b, 0) / 4, 1e-4);
      expect(parent.metrics.best_test_accuracy).to.be.closeTo(Math.max(...accuracies), 1e-4);
      const none = cells.filter((c) => c.tags.mixing === 'none').map((c) => c.metrics.test_accuracy!);
      expect(parent.metrics['row_mean_test_accuracy/None']).to.be.closeTo((none[0]! + none[1]!) / 2, 1e-4);
      // The reference gives the paper's numbers of three cells: the mean difference to them.
      expect(parent.metrics.mean_difference_to_paper).to.be.a('number');
      // What the stages did over the table: a health figure's mean over the cells' own.
      const lossFirst = cells.map((c) => c.metrics['health.supervised_loss_first']!);
      expect(lossFirst.every((v) => typeof v === 'number')).to.equal(true);
      expect(parent.metrics['health.supervised_loss_first']).to.be.closeTo(lossFirst.reduce((a, b) => a + b, 0) / 4, 1e-6);
    });

    it('a cell’s run has its figures over its seeds: one seed’s own, no std', () => {
      for (const c of cells) {
        const [seed, ...more] = seeds.filter((s) => s.tags['mlflow.parentRunId'] === c.run_id);
        expect(more, c.name).to.deep.equal([]);
        expect(c.metrics.test_accuracy).to.equal(seed!.metrics.test_accuracy);
        expect(c.metrics.seeds_finished).to.equal(1);
        expect(c.metrics, 'one seed has no std').to.not.have.property('test_accuracy_std');
        expect(c.metrics['health.supervised_accuracy']).to.equal(seed!.metrics['health.supervised_accuracy']);
      }
    });

    it('params: the cell’s run its own resolved settings but the seed, each within 500 characters; a seed’s run its seed; the parent those every cell shares', () => {
      for (const c of cells) {
        const keys = Object.keys(c.params);
        expect(
          keys.filter((k) => NOT_SETTINGS.includes(k.split('.')[0]!)),
          c.name,
        ).to.deep.equal([]);
        expect(Object.values(c.params).every((v) => v.length <= 500)).to.equal(true);
        expect(c.params['pipeline.supervised.lr']).to.equal('0.001');
        expect(c.params['model.backbone.use']).to.equal('vit');
        expect(c.params['data.labels.fraction']).to.equal(c.tags.labels);
        expect(c.params.seeds).to.equal('1');
        expect(c.params).to.not.have.property('seed');
        expect(keys.length).to.be.within(60, 200);
      }
      for (const s of seeds) expect(s.params).to.deep.equal({ seed: '11' });
      expect(parent.params['model.backbone.use']).to.equal('vit');
      expect(parent.params['data.labels.fraction']).to.equal(undefined); // it differs between cells
      expect(parent.params).to.not.have.property('seed');
      expect(Object.keys(parent.params).length).to.be.greaterThan(40);
    });

    it('logs the dataset as each seed run’s input: name, digest (the data cache key), source, profile', () => {
      const digests = new Set<string>();
      for (const c of seeds) {
        expect(c.inputs).to.have.length(1);
        const d = c.inputs[0]!;
        expect(d).to.deep.include({ name: 'Synthetic faces', source_type: 'code', context: 'training' });
        expect(d.source).to.have.nested.property('tags.mlflow\\.source\\.name', 'ssfer');
        expect(d.profile).to.deep.include({ train: 84, test: 35, image_size: 16 });
        expect(d.digest).to.match(/^[0-9a-f]{16}$/);
        digests.add(d.digest);
      }
      // Every cell loads the same data (labels differ, not the images).
      expect(digests.size).to.equal(1);
      for (const c of cells) expect(c.inputs).to.deep.equal([]);
    });

    it('one step axis per stage: supervised/loss from step 1 in every seed run; final figures at step 0', async () => {
      for (const c of seeds) {
        const history = await client.metricHistory(c.run_id, 'supervised/loss');
        const steps = history.map((m) => m.step).sort((a, b) => a - b);
        expect(steps[0]).to.equal(1);
        expect(steps).to.deep.equal(Array.from({ length: steps.length }, (_, i) => i + 1));
        expect(steps.length).to.be.greaterThan(3);
        expect((await client.metricHistory(c.run_id, 'test_accuracy')).map((m) => m.step)).to.deep.equal([0]);
      }
      // pretrain: none — no pre-training run, no pre-training metrics, no tag that points at one.
      expect(checked.runs.filter((r) => r.tags.ssfer_kind === 'stage')).to.deep.equal([]);
      for (const c of [...cells, ...seeds]) expect(Object.keys(c.tags).filter((k) => k.startsWith('pretrain'))).to.deep.equal([]);
    });

    it('logs each seed’s model on its run: mlflow.pyfunc.load_model("runs:/<id>/model") predicts the kept model’s logits', async () => {
      expect(checked.predictions).to.have.length(4);
      const run = latestRun(out, 'tiny-run');
      for (const p of checked.predictions) {
        const seed = seeds.find((c) => c.run_id === p.run_id)!;
        expect(p.flavors).to.deep.equal(['onnx', 'python_function']);
        expect(p.inputs).to.deep.equal([[-1, 16, 16, 3]]);
        expect(p.outputs).to.deep.equal([[-1, 7]]);
        expect(p.onnx_inputs).to.deep.equal(['images']);
        expect(p.metadata.classes).to.deep.equal(['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
        const { model } = await loadModelBundle(path.join(run, 'cells', cellFolder(seed.tags.cell!), 'seed-0', 'model'));
        const pixels = new Float32Array(fs.readFileSync(images).buffer.slice(0));
        const expected = tf.tidy(() => model.logits(tf.tensor4d(pixels, shape as [number, number, number, number]), { training: false }).arraySync());
        model.dispose();
        p.logits.forEach((row, i) => row.forEach((v, k) => expect(v).to.be.closeTo(expected[i]![k]!, 1e-4)));
      }
    });

    it('the README’s Python example loads a seed’s model and names the class the kept model gives', async () => {
      const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
      const example = /## MLflow tracking[\s\S]*?```python\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(example, 'a python example in the README').to.be.a('string');
      const seed = seeds[0]!;
      expect(example).to.contain('<seed run id>');
      const script = example!.replace(/^ {2}/gm, '').replace('<seed run id>', seed.run_id);
      const r = spawnSync(venvPython(), ['-c', script], {
        encoding: 'utf8',
        env: { ...process.env, MLFLOW_TRACKING_URI: server.uri, DO_NOT_TRACK: 'true', MLFLOW_DISABLE_TELEMETRY: 'true' },
      });
      expect(r.status, r.stderr).to.equal(0);
      const { model, manifest } = await loadModelBundle(path.join(latestRun(out, 'tiny-run'), 'cells', cellFolder(seed.tags.cell!), 'seed-0', 'model'));
      const logits = tf.tidy(() => Array.from(model.logits(tf.zeros([1, 16, 16, 3]), { training: false }).dataSync()));
      model.dispose();
      expect(r.stdout.trim()).to.equal(manifest.classes[logits.indexOf(Math.max(...logits))]);
    });

    it('keeps each model as a logged model of its seed’s run, with its test accuracy on the dataset', () => {
      expect(checked.logged_models).to.have.length(4);
      for (const m of checked.logged_models) {
        const seed = seeds.find((c) => c.run_id === m.source_run_id)!;
        expect(seed, m.source_run_id).to.not.equal(undefined);
        expect(m.name).to.equal('model');
        expect(m.status).to.contain('READY');
        expect(seed.outputs).to.deep.equal([m.model_id]);
        expect(m.metrics).to.deep.equal([
          { key: 'test_accuracy', value: seed.metrics.test_accuracy, dataset_name: 'Synthetic faces', dataset_digest: seed.inputs[0]!.digest },
        ]);
      }
      for (const c of cells) expect(c.outputs).to.deep.equal([]);
    });

    it('registers seed 0’s model of the cell with the best mean in the model registry', () => {
      expect(checked.versions).to.have.length(1);
      const v = checked.versions[0]!;
      const best = Math.max(...cells.map((c) => c.metrics.test_accuracy!));
      const seed = seeds.find((c) => c.run_id === v.run_id)!;
      expect(seed.tags.seed_index).to.equal('0');
      const cell = cellOf(seed);
      // The first cell in the table's order with the best mean.
      const order = ['mixing=none/labels=0.25', 'mixing=none/labels=0.5', 'mixing=facemix/labels=0.25', 'mixing=facemix/labels=0.5'];
      expect(cells.map((c) => c.tags.cell).sort()).to.deep.equal([...order].sort());
      expect(cell.tags.cell).to.equal(order.find((id) => cells.find((c) => c.tags.cell === id)!.metrics.test_accuracy === best));
      expect(v.version).to.equal('1');
      expect(v.source).to.equal(`models:/${checked.logged_models.find((m) => m.source_run_id === seed.run_id)!.model_id}`);
      expect(v.description).to.contain(`cell ${cell.tags.cell} seed 0`);
      expect(v.loads).to.deep.equal(['onnx', 'python_function']);
    });

    it('keeps the files on the seed runs, the table on the parent, and compare reads the table back', async () => {
      for (const c of seeds) {
        const { info } = await client.getRun(c.run_id);
        for (const f of ['metrics.json', 'confusion.png', 'curves.png', 'config.json'])
          expect((await client.downloadArtifact(info, f)).length, f).to.be.greaterThan(0);
        const config = JSON.parse((await client.downloadArtifact(info, 'config.json')).toString()) as { seed: number };
        expect(config.seed).to.equal(11);
      }
      const table = JSON.parse((await client.downloadArtifact((await client.getRun(parent.run_id)).info, 'table.json')).toString()) as { cells: unknown[] };
      expect(table.cells).to.have.length(4);
      const text = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri]);
      expect(text.status, text.stderr).to.equal(0);
      expect(text.stdout).to.contain('tiny run fixture').and.contain('FaceMix');
      const json = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri, '--json']);
      const parsed = JSON.parse(json.stdout) as { run_id: string; table: { cells: unknown[] } };
      expect(parsed.run_id).to.equal(parent.run_id);
      expect(parsed.table.cells).to.have.length(4);
      const against = cli(['compare', '--experiment', 'e2e', '--tracking-uri', server.uri, '--against', parent.run_id, '--json']);
      const diff = JSON.parse(against.stdout) as { cells: { diff: number | null }[] };
      expect(diff.cells).to.have.length(4);
      for (const d of diff.cells) expect(d.diff === null || d.diff === 0).to.equal(true);
    });
  });

  const stagesOut = tempDir();
  const runStages = () =>
    cli([
      'run',
      stagesRecipe,
      '--seeds',
      '2',
      '--tracking',
      'mlflow',
      '--tracking-uri',
      server.uri,
      '--set',
      'tracking.experiment=stages',
      '--set',
      'tracking.every=1',
      '--out',
      stagesOut,
    ]);

  it('each seed’s shared pre-training is its own nested run, which the seed runs using it are tagged with', () => {
    const r = runStages();
    expect(r.status, r.stderr).to.equal(0);
    const checked = pythonCheck(server.uri, 'stages');
    const stages = checked.runs.filter((x) => x.tags.ssfer_kind === 'stage');
    const cells = checked.runs.filter((x) => x.tags.ssfer_kind === 'cell');
    const seeds = checked.runs.filter((x) => x.tags.ssfer_kind === 'seed');
    const parent = checked.runs.find((x) => x.tags.ssfer_kind === 'run')!;
    expect(stages).to.have.length(2);
    expect(cells).to.have.length(4);
    expect(seeds).to.have.length(8);
    // The stage key holds the seed: seed 0 (3) and seed 1 (4) pre-train apart.
    expect(new Set(stages.map((s) => s.tags.stage_key)).size).to.equal(2);
    for (const pre of stages) {
      const k = pre.tags.seed_index!;
      expect(pre.tags).to.include({ stage: 'pretrain', seed: String(3 + Number(k)), 'mlflow.parentRunId': parent.run_id });
      expect(pre.name).to.equal(`pre-training ${pre.tags.stage_key!.slice(0, 8)} · seed ${k}`);
      expect(pre.status).to.equal('FINISHED');
      expect(pre.params['pipeline.pretrain.use']).to.equal('mae');
      expect(pre.params.seed).to.equal(pre.tags.seed);
      expect(pre.metrics).to.have.property('pretrain/loss');
      expect(pre.metrics).to.have.property('pretrain_loss_last');
      expect(pre.tags['mlflow.note.content']).to.match(/^mae: /);
    }
    for (const c of cells) {
      expect(Object.keys(c.tags).filter((k) => k.startsWith('pretrain'))).to.deep.equal([]);
      expect(c.metrics.seeds_finished).to.equal(2);
      expect(c.metrics).to.have.property('test_accuracy_std');
    }
    for (const s of seeds) {
      const pre = stages.find((x) => x.tags.seed_index === s.tags.seed_index)!;
      expect(s.tags.pretrain_key).to.equal(pre.tags.stage_key);
      expect(s.tags.pretrain_run_id).to.equal(pre.run_id);
      expect(Object.keys(s.metrics).filter((k) => k.startsWith('pretrain/'))).to.deep.equal([]);
      expect(s.metrics).to.have.property('semi/loss');
    }
  });

  it('each stage’s steps start at 1, in the seed run that computed the pre-training too', async () => {
    const { stages, seeds } = await runsOf(client, 'stages');
    expect(stages).to.have.length(2);
    for (const pre of stages) expect((await client.metricHistory(pre.info.run_id, 'pretrain/loss')).map((m) => m.step).sort()).to.deep.equal([1, 2]);
    for (const c of seeds) {
      for (const key of ['supervised/loss', 'semi/loss']) expect((await client.metricHistory(c.info.run_id, key)).map((m) => m.step)[0], key).to.equal(1);
    }
  });

  it('a pre-training reused from the stage cache gets its run too, with its figures and no curves', () => {
    const r = runStages();
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('pre-training reused from the stage cache');
    const checked = pythonCheck(server.uri, 'stages');
    const parents = checked.runs.filter((x) => x.tags.ssfer_kind === 'run');
    expect(parents).to.have.length(2);
    const latest = parents.find(
      (p) => !checked.runs.some((x) => x.tags.ssfer_kind === 'stage' && x.tags['mlflow.parentRunId'] === p.run_id && x.metrics['pretrain/loss'] !== undefined),
    )!;
    const stages = checked.runs.filter((x) => x.tags.ssfer_kind === 'stage' && x.tags['mlflow.parentRunId'] === latest.run_id);
    expect(stages).to.have.length(2);
    for (const stage of stages) {
      expect(stage.metrics).to.have.property('pretrain_loss_last');
      expect(stage.tags['mlflow.note.content']).to.match(/\(from the stage cache\)$/);
    }
    const cells = checked.runs.filter((x) => x.tags.ssfer_kind === 'cell' && x.tags['mlflow.parentRunId'] === latest.run_id);
    expect(cells).to.have.length(4);
    const seeds = checked.runs.filter((x) => x.tags.ssfer_kind === 'seed' && cells.some((c) => c.run_id === x.tags['mlflow.parentRunId']));
    expect(seeds).to.have.length(8);
    for (const s of seeds) expect(s.tags.pretrain_run_id).to.equal(stages.find((x) => x.tags.seed_index === s.tags.seed_index)!.run_id);
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
    expect(after1.cells).to.have.length(4);
    expect(after1.seeds).to.have.length(4);
    for (const c of [...after1.parents, ...after1.children]) expect(c.info.status).to.equal('FINISHED');
    const histories = await Promise.all(after1.seeds.map((c) => client.metricHistory(c.info.run_id, 'supervised/loss')));
    const exp = await client.getExperimentByName('offline');
    expect(await client.searchLoggedModels([exp!])).to.have.length(4);

    const s2 = cli(['sync', out, '--tracking-uri', server.uri]);
    expect(s2.status, s2.stderr).to.equal(0);
    expect(s2.stdout).to.contain(' 0 calls sent');
    const after2 = await runsOf(client, 'offline');
    expect(after2.parents).to.have.length(1);
    expect(after2.children).to.have.length(8);
    const histories2 = await Promise.all(after2.seeds.map((c) => client.metricHistory(c.info.run_id, 'supervised/loss')));
    expect(histories2.map((h) => h.length).sort()).to.deep.equal(histories.map((h) => h.length).sort());
    expect(histories[0]!.length).to.be.greaterThan(3);
    expect(await client.searchLoggedModels([exp!])).to.have.length(4);
    expect(acknowledgedOnce(readOutbox(outbox!))).to.equal(true);
  });

  it('gives each cell of several seeds its mean, std and 95 % interval, and its paired difference, on the cell’s own run', async () => {
    const out = tempDir();
    const r = cli([
      'run',
      seedsRecipe,
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
    // The fixture's linear backbone does not export to ONNX: its models are not logged, which is said once.
    expect(r.stderr.match(/the cells' models are not logged/g)).to.have.length(1);
    const table = JSON.parse(r.stdout) as { cells: { id: string; ours: number; ours_std: number; ci95: [number, number]; diff: number | null }[] };
    const { cells, seeds } = await runsOf(client, 'seeds');
    expect(cells).to.have.length(4);
    expect(seeds).to.have.length(12);
    for (const cell of cells) {
      const mine = seeds.filter((s) => tag(s, 'mlflow.parentRunId') === cell.info.run_id);
      expect(mine.map((s) => tag(s, 'seed_index')).sort()).to.deep.equal(['0', '1', '2']);
      expect(mine.map((s) => tag(s, 'seed')).sort()).to.deep.equal(['5', '6', '7']);
      expect(mine.every((s) => tag(s, 'cell') === tag(cell, 'cell') && tag(s, 'lr') === tag(cell, 'lr'))).to.equal(true);
      expect(mine.map((s) => s.info.run_name).sort()).to.deep.equal([0, 1, 2].map((k) => `${cell.info.run_name} · seed ${k}`));
      expect(cell.info.run_name).to.match(/^0\.0\d+ · (25|50)%$/);
      expect(tag(cell, 'seeds')).to.equal('3');
      for (const s of mine) expect(Object.fromEntries(s.data.params!.map((p) => [p.key, p.value]))).to.deep.equal({ seed: tag(s, 'seed') });
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
    // Cell a: three seeds finished (30, 40, 50 %), each after its seed's pre-training (a run of
    // its own beside the cells'); cell b: seed 0 finished, seed 1 killed.
    const cell = (id: string, k: number) =>
      tracker.startCell({ id, seedIndex: k, config: { seed: 4 + k, seeds: 3, title: 't' }, shared: { pretrain: { key: `pre${k}`, config: { seed: 4 + k } } } });
    for (const [k, acc] of [0.3, 0.4, 0.5].entries()) {
      await cell('a', k);
      tracker.logMetrics({ id: 'a', seedIndex: k }, { 'pretrain/loss': 1 }, 1);
      await tracker.endCell({ id: 'a', seedIndex: k }, { metrics: { test_accuracy: acc }, artifacts: [], status: 'FINISHED' });
    }
    await cell('b', 0);
    await tracker.endCell({ id: 'b', seedIndex: 0 }, { metrics: { test_accuracy: 0.2 }, artifacts: [], status: 'FINISHED' });
    await cell('b', 1);
    await tracker.endCell({ id: 'b', seedIndex: 1 }, { metrics: {}, artifacts: [], status: 'KILLED' });
    const { table, children } = await readTrackedRun(client, 'rebuilt');
    expect((await runsOf(client, 'rebuilt')).stages).to.have.length(3);
    expect(children.map((c) => tag(c, 'cell'))).to.have.members(['a', 'b']);
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
    expect(await client.serverVersion()).to.match(/^\d+\.\d+\.\d+/);
  });

  it('sends its backlog by itself when the server comes back, each call once', async function () {
    this.timeout(180_000);
    // The test server itself goes down and comes back (this test runs last).
    const down = server;
    const logs: string[] = [];
    const dir = tempDir();
    const tracker = new MlflowTracker({
      uri: down.uri,
      experiment: 'comeback',
      every: 1,
      backoffMs: 200,
      maxBackoffMs: 1000,
      log: (l) => logs.push(l),
      logModels: false,
    });
    await tracker.startRun({
      recipe: 'comeback',
      title: 'comeback',
      scale: 'smoke',
      seed: 1,
      seeds: 1,
      backend: 'cpu',
      dir,
      file: 'comeback.yaml',
      commit: null,
    });
    const first = { id: 'first', seedIndex: 0 };
    await tracker.startCell({ ...first, config: { seed: 1, seeds: 1, pipeline: { lr: 0.1 } } });
    for (let step = 1; step <= 3; step++) tracker.logMetrics(first, { 'supervised/loss': 1 / step }, step);
    await tracker.endCell(first, { metrics: { test_accuracy: 0.5 }, artifacts: [], status: 'FINISHED' });
    await tracker.summarizeCell({ id: 'first', config: { seed: 1, seeds: 1, pipeline: { lr: 0.1 } } }, { metrics: { test_accuracy: 0.5 }, status: 'FINISHED' });
    const outbox = path.join(dir, 'mlflow-outbox.jsonl');
    expect(acknowledgedOnce(readOutbox(outbox))).to.equal(true);

    await down.stop();
    const second = { id: 'second', seedIndex: 0 };
    await tracker.startCell({ ...second, config: { seed: 1, seeds: 1, pipeline: { lr: 0.2 } } });
    for (let step = 1; step <= 4; step++) tracker.logMetrics(second, { 'supervised/loss': 2 / step }, step);
    await tracker.endCell(second, { metrics: { test_accuracy: 0.75 }, artifacts: [], status: 'FINISHED' });
    await tracker.summarizeCell(
      { id: 'second', config: { seed: 1, seeds: 1, pipeline: { lr: 0.2 } } },
      { metrics: { test_accuracy: 0.75 }, status: 'FINISHED' },
    );
    expect(logs.join('\n')).to.contain('MLflow tracking paused');
    const waiting = readOutbox(outbox).filter((l) => l.type === 'op').length - readOutbox(outbox).filter((l) => l.type === 'ack').length;
    expect(waiting).to.be.greaterThan(3);

    // The same server back on the same port and store: the tracker finds it by itself.
    const back = (server = await startMlflow({ port: down.port, dir: down.dir }));
    {
      const deadline = Date.now() + 60_000;
      while (!acknowledgedOnce(readOutbox(outbox)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(acknowledgedOnce(readOutbox(outbox)), 'every call sent').to.equal(true);
      expect(logs.join('\n')).to.match(/the server answers again after \d+ s/);
      await tracker.endRun({ artifacts: [], status: 'FINISHED', metrics: { mean_test_accuracy: 0.625 } });
      expect(acknowledgedOnce(readOutbox(outbox))).to.equal(true);
      expect(logs.join('\n')).to.not.contain('not sent');

      const c = new MlflowClient({ uri: back.uri });
      const { parents, children } = await runsOf(c, 'comeback');
      expect(parents).to.have.length(1);
      expect(children.map((x) => x.info.run_name).sort()).to.deep.equal(['first', 'first · seed 0', 'second', 'second · seed 0']);
      for (const x of [...parents, ...children]) expect(x.info.status).to.equal('FINISHED');
      const seed = children.find((x) => x.info.run_name === 'second · seed 0')!;
      const history = await c.metricHistory(seed.info.run_id, 'supervised/loss');
      expect(history.map((m) => m.step).sort()).to.deep.equal([1, 2, 3, 4]);
      expect(tagsOf(seed)['mlflow.user']).to.be.a('string');
      const cell = children.find((x) => x.info.run_name === 'second')!;
      expect(metricOf(cell, 'test_accuracy')).to.equal(0.75);
    }
  });
});
