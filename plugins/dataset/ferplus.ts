import { realDatasetPlugin } from './internal/real.ts';

export default realDatasetPlugin({
  name: 'ferplus',
  displayName: 'FERPlus',
  env: 'SSFER_FERPLUS_ROOT',
  layout: 'fer2013.csv + fer2013new.csv vote counts',
  classes: [8, 7],
  trainSize: { 8: 28709, 7: 28709 },
  testSize: { 8: 7178, 7: 7178 },
});
