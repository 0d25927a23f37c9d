import type { Analysis } from '../../src/contracts/analysis.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import { countComplexity } from './internal/params-flops.ts';

/** What `params-flops` reports, each a figure a table may show (Table 6: params_m and gflops). */
const FIGURES = ['params_m', 'gflops', 'gflops_weights', 'gflops_attention', 'parameters', 'buffers', 'image_size'] as const;

export default definePlugin({
  kind: 'analysis',
  name: 'params-flops',
  description:
    'parameters (M) and forward FLOPs (G) per image, counted from the model: gflops as ptflops counts them (the authors’ tool for Table 6), gflops_weights as torchvision and fvcore do',
  options: options({}, { additionalProperties: false }),
  figures: () => FIGURES,
  create: (): Analysis => ({
    name: 'params-flops',
    async run({ model }) {
      const c = countComplexity(model);
      const byKernel = Object.fromEntries(Object.entries(c.byKernel).map(([k, v]) => [k, v / 1e9]));
      return {
        figures: {
          params_m: c.parameters / 1e6,
          // One multiply-add is one FLOP, as in the paper's Table 6 and torchvision's model cards.
          gflops: c.layerFlops / 1e9,
          gflops_weights: c.flops / 1e9,
          gflops_attention: c.attentionFlops / 1e9,
          parameters: c.parameters,
          buffers: c.buffers,
          image_size: c.imageSize,
          gflops_by_kernel: byKernel,
        },
      };
    },
  }),
});
