import { expect } from 'chai';
import { parse } from 'yaml';
import type { Table } from '../../src/report/table.ts';
import { mlflowModelFiles, signature } from '../../src/tracking/mlmodel.ts';
import { LONG_PARAMS_FILE, PARAM_VALUE_LIMIT, settingsParams } from '../../src/tracking/outbox.ts';
import { StageSteps } from '../../src/tracking/steps.ts';
import { tableMetrics } from '../../src/tracking/summary.ts';
import { datasetInput, MlflowTracker } from '../../src/tracking/tracker.ts';
import { readOutbox, type Op } from '../../src/tracking/outbox.ts';
import { tempDir } from '../helpers.ts';
import path from 'node:path';
import type { CellMetrics } from '../../src/pipeline/cell-context.ts';
import { trackedInputs } from '../../src/pipeline/tracked.ts';

describe('what the MLflow tracker logs', () => {
  describe('datasets', () => {
    const metrics = (dataset: Partial<CellMetrics['dataset']>) =>
      ({
        test_count: 35,
        classes: ['a', 'b'],
        dataset: { name: 'rafdb', display: 'RAF-DB', stand_in: null, notes: [], key: '0123456789abcdef', train_count: 84, image_size: 16, ...dataset },
      }) as unknown as CellMetrics;

    it('a folder read from disk is a local source with its path, under the dataset’s name', () => {
      const [input] = trackedInputs(metrics({ source: '/data/RAF-DB' }));
      expect(input).to.deep.equal({
        name: 'RAF-DB',
        digest: '0123456789abcdef',
        context: 'training',
        source: { folder: '/data/RAF-DB' },
        profile: { train: 84, test: 35, classes: ['a', 'b'], image_size: 16 },
      });
      expect(datasetInput(input!)).to.deep.equal({
        dataset: {
          name: 'RAF-DB',
          digest: '0123456789abcdef',
          source_type: 'local',
          source: '{"uri":"/data/RAF-DB"}',
          profile: '{"train":84,"test":35,"classes":["a","b"],"image_size":16}',
        },
        tags: [{ key: 'mlflow.data.context', value: 'training' }],
      });
    });

    it('a stand-in says so in its name and is a code source that says what it is', () => {
      const [input] = trackedInputs(metrics({ source: null, stand_in: 'synthetic stand-in for RAF-DB (dataset not configured locally)' }));
      expect(input!.name).to.equal('RAF-DB (synthetic stand-in)');
      const { dataset } = datasetInput(input!);
      expect(dataset.source_type).to.equal('code');
      expect(JSON.parse(dataset.source)).to.deep.equal({
        tags: { 'mlflow.source.name': 'ssfer', 'ssfer.stand_in': 'synthetic stand-in for RAF-DB (dataset not configured locally)' },
      });
      // A cell of an older run (no data key) has no input.
      expect(trackedInputs(metrics({ key: undefined }))).to.deep.equal([]);
    });
  });

  describe('params', () => {
    it('are the cell’s own settings: not the grid, scales, reference, texts, tracking or launcher', () => {
      const { params, long } = settingsParams({
        title: 'T',
        description: 'D',
        seed: 3,
        scale: 'smoke',
        scales: { smoke: { model: { backbone: { preset: 'tiny' } } } },
        grid: { rows: [{ name: 'a', values: [1, 2] }] },
        reference: { values: [[1]] },
        tracking: { use: 'mlflow', uri: 'http://x' },
        launcher: { use: 'processes', workers: 2 },
        model: { backbone: { use: 'vit', image_size: 32 } },
        pipeline: { supervised: { betas: [0.9, 0.95], milestones: [] } },
      });
      expect(Object.fromEntries(params.map((p) => [p.key, p.value]))).to.deep.equal({
        seed: '3',
        scale: 'smoke',
        'model.backbone.use': 'vit',
        'model.backbone.image_size': '32',
        'pipeline.supervised.betas': '[0.9,0.95]',
        'pipeline.supervised.milestones': '[]',
      });
      expect(long).to.deep.equal({});
    });

    it(`are cut at ${PARAM_VALUE_LIMIT} characters, saying so; the full value is kept for ${LONG_PARAMS_FILE}`, () => {
      const search = Array.from({ length: 40 }, (_, i) => ({ path: `pipeline.supervised.p${i}`, min: 0, max: 1 }));
      const { params, long } = settingsParams({ pipeline: { tune: { search } }, seed: 1 });
      const p = params.find((x) => x.key === 'pipeline.tune.search')!;
      const full = JSON.stringify(search);
      expect(full.length).to.be.greaterThan(PARAM_VALUE_LIMIT);
      expect(p.value).to.have.length(PARAM_VALUE_LIMIT);
      expect(p.value).to.match(new RegExp(`…\\[${full.length} characters; in full in long-params\\.json\\]$`));
      expect(full.startsWith(p.value.slice(0, 100))).to.equal(true);
      expect(long).to.deep.equal({ 'pipeline.tune.search': full });
    });
  });

  describe('the step axis', () => {
    it('counts each stage from 1, continues a stage that starts over, and keeps a resumed stage’s steps', () => {
      const s = new StageSteps();
      // A pre-training of 3 steps, then supervised: each from 1.
      expect([1, 2, 3].map((k) => s.at('pretrain', k))).to.deep.equal([1, 2, 3]);
      expect([1, 2].map((k) => s.at('supervised', k))).to.deep.equal([1, 2]);
      // The tuner's trials of 3 steps each follow one another on one axis.
      expect([1, 2, 3, 1, 2, 3, 1].map((k) => s.at('tune', k))).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
      // A stage resumed at step 41 logs 41 on.
      const resumed = new StageSteps();
      expect([41, 42].map((k) => resumed.at('semi', k))).to.deep.equal([41, 42]);
    });
  });

  describe('the parent’s summary', () => {
    it('holds the finished and failed cells, mean, best, row means, summary columns and the difference to the paper (as shares)', () => {
      const cell = (id: string, row: string, column: string, ours: number | null, paper: number | null, status: 'done' | 'failed' = 'done') => ({
        id,
        row,
        column,
        ours,
        paper,
        status,
      });
      const table = {
        recipe: 'r',
        title: 't',
        scale: 'smoke',
        seed: 1,
        backend: 'cpu',
        metric: 'accuracy (%)',
        notes: [],
        rowTitle: 'Method',
        columnHeaders: [['RAF-DB', 'RAF-DB']],
        rows: ['A', 'B'],
        cells: [
          cell('a1', 'A', 'RAF-DB 5%', 60, 70),
          cell('a2', 'A', 'RAF-DB 10%', 70, null),
          cell('b1', 'B', 'RAF-DB 5%', 80, 75),
          cell('b2', 'B', 'RAF-DB 10%', null, 80, 'failed'),
        ],
        summary: {
          columns: [{ label: 'Average', of: 'mean' }],
          groups: [{ labels: ['RAF-DB'], columns: [0, 1] }],
          cells: [[[{ ours: 65, paper: null }]], [[{ ours: null, paper: null }]]],
        },
      } as unknown as Table;
      const m = tableMetrics(table);
      expect(m.cells_finished).to.equal(3);
      expect(m.cells_failed).to.equal(1);
      expect(m.mean_test_accuracy).to.be.closeTo(0.7, 1e-12); // (60 + 70 + 80) / 3 %
      expect(m.best_test_accuracy).to.equal(0.8);
      expect(m['row_mean_test_accuracy/A']).to.be.closeTo(0.65, 1e-12);
      expect(m['row_mean_test_accuracy/B']).to.be.closeTo(0.8, 1e-12);
      expect(m['summary/Average/A/RAF-DB']).to.equal(0.65);
      expect(m).to.not.have.property('summary/Average/B/RAF-DB');
      expect(m.mean_difference_to_paper).to.be.closeTo((-10 + 5) / 2 / 100, 1e-12);
      expect(Object.keys(m).filter((k) => k.startsWith('health.'))).to.deep.equal([]);
      // With the stages' summary: each figure's mean over the cells, and the cells above their probe.
      const withStages = tableMetrics({
        ...table,
        stages: {
          cells: 3,
          figures: [{ name: 'semi_gain', stage: 'semi', cells: 3, mean: -0.004, min: -0.02, max: 0.01 }],
          gains: [],
          above_probe: { above: 2, cells: 3 },
        },
      });
      expect(withStages['health.semi_gain']).to.equal(-0.004);
      expect(withStages.cells_above_linear_probe).to.equal(2);
    });
  });

  describe('the MLflow Model files', () => {
    const spec = { imageSize: 32, channels: 3, classes: 7, metadata: { classes: ['a', 'b'] }, pythonVersion: '3.10' };
    const place = {
      runId: 'r1',
      modelId: 'm-1',
      artifactPath: 'mlflow-artifacts:/1/models/m-1/artifacts',
      mlflowVersion: '3.1.0',
      onnxBytes: 1000,
      created: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 600)),
    };

    it('write the onnx flavor and python_function (loader mlflow.onnx) with the tensor signature, as MLflow 3 does', () => {
      const files = mlflowModelFiles(spec, place);
      expect(Object.keys(files).sort()).to.deep.equal(['MLmodel', 'conda.yaml', 'python_env.yaml', 'requirements.txt']);
      const m = parse(files.MLmodel!) as Record<string, any>;
      expect(m.flavors.onnx).to.deep.include({ data: 'model.onnx', code: null });
      expect(m.flavors.python_function).to.deep.equal({
        data: 'model.onnx',
        env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
        loader_module: 'mlflow.onnx',
        python_version: '3.10',
      });
      expect(JSON.parse(m.signature.inputs)).to.deep.equal([{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 32, 32, 3] } }]);
      expect(JSON.parse(m.signature.outputs)).to.deep.equal([{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 7] } }]);
      expect(m).to.deep.include({ run_id: 'r1', model_id: 'm-1', model_uuid: 'm-1', mlflow_version: '3.1.0', utc_time_created: '2025-01-02 03:04:05.600' });
      expect(m.metadata).to.deep.equal({ classes: ['a', 'b'] });
      expect(m.model_size_bytes).to.equal(1000 + ['conda.yaml', 'python_env.yaml', 'requirements.txt'].reduce((n, f) => n + Buffer.byteLength(files[f]!), 0));
      expect(Object.keys(m)).to.deep.equal([...Object.keys(m)].sort());
      // Python's json.dumps spacing, as MLflow writes the signature.
      expect(signature(spec).inputs).to.equal('[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 32, 32, 3]}}]');
    });

    it('name the environment: the server’s MLflow, the Python version given, onnx and onnxruntime that run opset 17', () => {
      const files = mlflowModelFiles(spec, place);
      expect(files['requirements.txt']!.split('\n')).to.deep.equal(['mlflow==3.1.0', 'numpy', 'onnx>=1.12', 'onnxruntime>=1.12']);
      expect(parse(files['python_env.yaml']!)).to.deep.equal({
        python: '3.10',
        build_dependencies: ['pip', 'setuptools', 'wheel'],
        dependencies: ['-r requirements.txt'],
      });
      expect(parse(files['conda.yaml']!)).to.deep.equal({
        channels: ['conda-forge'],
        dependencies: ['python=3.10', 'pip', { pip: ['mlflow==3.1.0', 'numpy', 'onnx>=1.12', 'onnxruntime>=1.12'] }],
        name: 'mlflow-env',
      });
      // Without a logged model (an MLflow 2 server), the files sit under the run's `model/`.
      const m = parse(mlflowModelFiles(spec, { ...place, modelId: null, mlflowVersion: null }).MLmodel) as Record<string, unknown>;
      expect(m.model_id).to.equal(null);
      expect(m.model_uuid).to.match(/^[0-9a-f]{32}$/);
      expect(m).to.not.have.property('mlflow_version');
    });
  });
  describe('the registered model', () => {
    /**
     * A run of cells over two seeds, written only to the outbox (no server): each seed ends with
     * its test accuracy and a model, or fails; then each cell's mean as summarizeCell gives it.
     * Returns the register call made and what the tracker said.
     */
    async function registered(
      cells: Record<string, (number | 'failed' | 'kept')[]>,
    ): Promise<{ op: Extract<Op, { op: 'register' }> | undefined; logs: string[] }> {
      const dir = tempDir();
      const logs: string[] = [];
      const tracker = new MlflowTracker({ uri: null, experiment: 'e', every: 1, log: (l) => logs.push(l), register: 'best' });
      await tracker.startRun({ recipe: 'r', title: 'r', scale: 'smoke', seed: 1, seeds: 2, backend: 'cpu', dir, file: 'r.yaml', commit: null });
      const model = { onnx: path.join(dir, 'model.onnx'), imageSize: 16, channels: 3, classes: ['a', 'b'], metadata: {} };
      for (let k = 0; k < 2; k++)
        for (const [id, seeds] of Object.entries(cells)) {
          const v = seeds[k]!;
          if (v === 'kept') continue; // an earlier run of the folder finished it
          await tracker.startCell({ id, seedIndex: k, config: { seed: 1 + k, seeds: 2 } });
          await tracker.endCell(
            { id, seedIndex: k },
            v === 'failed' ? { metrics: {}, artifacts: [], status: 'FAILED' } : { metrics: { test_accuracy: v }, artifacts: [], status: 'FINISHED', model },
          );
        }
      for (const [id, seeds] of Object.entries(cells)) {
        const done = seeds.filter((v): v is number => typeof v === 'number');
        const failed = seeds.includes('failed');
        // A kept seed counts with the accuracy 0.9 in the cell's mean.
        const values = seeds.map((v) => (v === 'kept' ? 0.9 : v)).filter((v): v is number => typeof v === 'number');
        await tracker.summarizeCell(
          { id, config: { seed: 1, seeds: 2 } },
          failed
            ? { metrics: { seeds_finished: done.length }, status: 'FAILED' }
            : { metrics: { test_accuracy: values.reduce((a, b) => a + b, 0) / values.length, seeds_finished: values.length }, status: 'FINISHED' },
        );
      }
      await tracker.endRun({ artifacts: [], status: 'FINISHED' });
      const op = readOutbox(path.join(dir, 'mlflow-outbox.jsonl')).find((l) => l.type === 'op' && l.op === 'register') as
        Extract<Op, { op: 'register' }> | undefined;
      return { op, logs };
    }
    const seedRef = (op: { ref: string } | undefined) => op?.ref.split(':').slice(1).join(':');

    it('is seed 0’s of the cell with the best mean, not the best single seed’s', async () => {
      // b's seed 0 is the best model (0.9), but a's mean (0.6) beats b's (0.5); c's seed 1 failed.
      const { op } = await registered({ a: [0.6, 0.6], b: [0.9, 0.1], c: [0.95, 'failed'] });
      expect(seedRef(op)).to.equal('cell:a:seed:0');
      expect(op!.name).to.equal('best');
      expect(op!.description).to.equal("cell a seed 0 of r (test accuracy 60.00 %; the cell's mean over 2 seeds 60.00 %, the best of the run)");
    });

    it('is the first best cell’s on a tie, and its first seed this run trained when an earlier run kept seed 0', async () => {
      expect(seedRef((await registered({ a: [0.5, 0.7], b: [0.7, 0.5] })).op)).to.equal('cell:a:seed:0');
      expect(seedRef((await registered({ a: [0.2, 0.2], b: ['kept', 0.5] })).op)).to.equal('cell:b:seed:1');
    });

    it('is none, said so, when the best cell’s models were all logged by an earlier run or no cell finished its seeds', async () => {
      const kept = await registered({ a: [0.2, 0.2], b: ['kept', 'kept'] });
      expect(kept.op).to.equal(undefined);
      expect(kept.logs.join('\n')).to.contain(
        "no model is registered as 'best': the best cell, b, finished its seeds in an earlier run of this results folder",
      );
      const failed = await registered({ a: [0.2, 'failed'] });
      expect(failed.op).to.equal(undefined);
      expect(failed.logs.join('\n')).to.contain("no model is registered as 'best': no cell finished all its seeds");
    });
  });
});
