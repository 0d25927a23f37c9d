import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin({
  kind: 'tracker',
  name: 'mlflow',
  description: "records runs in an MLflow tracking server through its REST API (results are also kept locally)",
  status: 'planned',
  plannedReason: 'MLflow tracking arrives with its own issue; use tracking: local meanwhile',
  options: {
    type: 'object',
    properties: {
      uri: { type: ['string', 'null'], default: null, description: 'tracking URI; null reads --tracking-uri or MLFLOW_TRACKING_URI' },
      experiment: { type: ['string', 'null'], default: null, description: 'experiment name; null uses the recipe name' },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
