import { realDatasetPlugin } from './internal/real.ts';

export default realDatasetPlugin({
  name: 'affectnet',
  displayName: 'AffectNet',
  env: 'SSFER_AFFECTNET_ROOT',
  layout: 'the official training/validation CSV files with face boxes',
  classes: [7, 8],
  alwaysNameClasses: true,
  trainSize: { 7: 283901, 8: 287651 },
  testSize: { 7: 3500, 8: 4000 },
});
