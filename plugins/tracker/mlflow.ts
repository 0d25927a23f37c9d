import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';

export default definePlugin({
  kind: 'tracker',
  name: 'mlflow',
  description:
    'records runs in an MLflow tracking server through its REST API: a parent run per ssfer run, nested in it a run per cell (its figures over the seeds) and per seed’s shared pre-training, nested in a cell’s run one per seed with the seed’s model as an MLflow Model (results are also kept locally; unsent calls wait in mlflow-outbox.jsonl, are retried, and ssfer sync sends what is left)',
  options: options({
    uri: nullable(Type.String(), { default: null, description: 'tracking URI; null reads --tracking-uri or MLFLOW_TRACKING_URI' }),
    experiment: nullable(Type.String(), { default: null, description: 'experiment name; null uses the recipe name' }),
    every: Type.Integer({ minimum: 1, default: 10, description: 'log training metrics every N steps of a stage' }),
    log_models: Type.Boolean({
      default: true,
      description:
        'log each finished seed’s model (exported to ONNX) as an MLflow Model on the seed’s run, loadable with mlflow.pyfunc.load_model("runs:/<seed run>/model")',
    }),
    register: nullable(Type.String({ minLength: 1, pattern: '^[^\'"]+$' }), {
      default: null,
      description: 'register in the model registry under this name the model of seed 0 of the cell with the best mean test accuracy over its seeds; null: none',
    }),
    python_version: Type.String({
      pattern: '^3\\.\\d+(\\.\\d+)?$',
      default: '3.10',
      description:
        'the Python version the logged models’ environment files (python_env.yaml, conda.yaml) name; mlflow.pyfunc warns when the loading Python’s differs',
    }),
  }),
  create: (o) =>
    new MlflowTracker({
      uri: o.uri,
      experiment: o.experiment,
      every: o.every,
      logModels: o.log_models,
      register: o.register,
      pythonVersion: o.python_version,
    }),
});
