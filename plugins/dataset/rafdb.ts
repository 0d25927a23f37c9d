import { realDatasetPlugin } from './internal/real.ts';

export default realDatasetPlugin({
  name: 'rafdb',
  displayName: 'RAF-DB',
  env: 'SSFER_RAFDB_ROOT',
  layout: 'EmoLabel/list_patition_label.txt + Image/aligned/',
  classes: [7],
  trainSize: { 7: 12271 },
  testSize: { 7: 3068 },
});
