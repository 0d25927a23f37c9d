import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';

export default definePlugin({
  kind: 'tracker',
  name: 'mlflow',
  description:
    'records runs in an MLflow tracking server through its REST API: a parent run per ssfer run, a nested run per cell and per shared pre-training, each cell’s model as an MLflow Model (results are also kept locally; unsent calls wait in mlflow-outbox.jsonl, are retried, and ssfer sync sends what is left)',
  options: options({
    uri: nullable(Type.String(), { default: null, description: 'tracking URI; null reads --tracking-uri or MLFLOW_TRACKING_URI' }),
    experiment: nullable(Type.String(), { default: null, description: 'experiment name; null uses the recipe name' }),
    every: Type.Integer({ minimum: 1, default: 10, description: 'log training metrics every N steps of a stage' }),
    log_models: Type.Boolean({
      default: true,
      description: 'log each finished cell’s model (exported to ONNX) as an MLflow Model, loadable with mlflow.pyfunc.load_model("runs:/<run>/model")',
    }),
    register: nullable(Type.String({ minLength: 1, pattern: '^[^\'"]+$' }), {
      default: null,
      description: 'register the model of the run’s best cell (highest test accuracy) in the model registry under this name; null: none',
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
