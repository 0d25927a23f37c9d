import { definePlugin } from '../../src/core/plugin.ts';
import { nullable, options, Type } from '../../src/core/schema.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';

export default definePlugin({
  kind: 'tracker',
  name: 'mlflow',
  description:
    'records runs in an MLflow tracking server through its REST API (results are also kept locally; unsent calls wait in mlflow-outbox.jsonl for ssfer sync)',
  options: options({
    uri: nullable(Type.String(), { default: null, description: 'tracking URI; null reads --tracking-uri or MLFLOW_TRACKING_URI' }),
    experiment: nullable(Type.String(), { default: null, description: 'experiment name; null uses the recipe name' }),
    every: Type.Integer({ minimum: 1, default: 10, description: 'log training metrics every N steps' }),
  }),
  create: (o) => new MlflowTracker({ uri: o.uri, experiment: o.experiment, every: o.every }),
});
