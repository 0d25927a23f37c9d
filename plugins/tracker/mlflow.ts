import { definePlugin } from '../../src/core/plugin.ts';
import type { Tracker } from '../../src/contracts/tracker.ts';
import { MlflowTracker } from '../../src/tracking/tracker.ts';

export default definePlugin<{ uri: string | null; experiment: string | null; every: number }, Tracker & { every: number }>({
  kind: 'tracker',
  name: 'mlflow',
  description: 'records runs in an MLflow tracking server through its REST API (results are also kept locally; unsent calls wait in mlflow-outbox.jsonl for ssfer sync)',
  options: {
    type: 'object',
    properties: {
      uri: { type: ['string', 'null'], default: null, description: 'tracking URI; null reads --tracking-uri or MLFLOW_TRACKING_URI' },
      experiment: { type: ['string', 'null'], default: null, description: 'experiment name; null uses the recipe name' },
      every: { type: 'integer', minimum: 1, default: 10, description: 'log training metrics every N steps' },
    },
  },
  create: (o) => new MlflowTracker({ uri: o.uri, experiment: o.experiment, every: o.every }),
});
