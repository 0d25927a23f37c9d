import type { Analysis, FigureTree } from '../../src/contracts/analysis.ts';
import { isTokenBackbone } from '../../src/contracts/backbone.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import { gradCamReport } from './internal/gradcam.ts';

const gradcamOptions = options(
  {
    per_class: Type.Integer({ minimum: 1, maximum: 32, default: 4, description: 'test images per class shown in gradcam.png, beside the class’s mean map' }),
    threshold: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.3,
      description: 'a pixel whose map value is above it is in the “emotion focused” region (the paper: 0.3); focused_share is that region’s share',
    }),
    target: choice(['predicted', 'label'], {
      default: 'predicted',
      description: 'the class each map explains: the predicted one (pytorch-grad-cam’s default) or the true label',
    }),
  },
  { additionalProperties: false },
);

/** The figures a table may show. */
const FIGURES = ['focused_share', 'constant_maps', 'count'] as const;

export default definePlugin({
  kind: 'analysis',
  name: 'gradcam',
  description:
    'Grad-CAM of the ViT on the last block’s input tokens (the paper’s Fig. 8): every test image’s map, the mean map per class (gradcam-mean.json) and a picture (gradcam.png)',
  options: gradcamOptions,
  requires: [{ path: 'model.backbone', provides: 'tokens', because: 'Grad-CAM is computed on the patch tokens of the last transformer block; choose vit' }],
  figures: () => FIGURES,
  create: (o): Analysis => ({
    name: 'gradcam',
    async run({ model, images, classes, batchSize, cell }) {
      if (!isTokenBackbone(model)) throw new Error(`gradcam: the backbone '${model.kind}' has no patch tokens; Grad-CAM here needs a ViT`);
      const report = await gradCamReport(model, images, classes, { perClass: o.per_class, batchSize, target: o.target });
      const hw = model.imageSize * model.imageSize;
      const focusedPerClass = new Array<number>(classes.length).fill(0);
      let focused = 0;
      let constant = 0;
      for (let i = 0; i < images.size; i++) {
        const m = report.maps.subarray(i * hw, (i + 1) * hw);
        let inside = 0;
        let lo = Infinity;
        let hi = -Infinity;
        for (let j = 0; j < hw; j++) {
          const v = m[j]!;
          if (v > o.threshold) inside++;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        if (hi - lo < 1e-6) constant++;
        focused += inside / hw;
        focusedPerClass[images.labels[i]!]! += inside / hw;
      }
      const perClass: Record<string, number> = {};
      classes.forEach((name, k) => {
        if (report.counts[k]! > 0) perClass[name] = focusedPerClass[k]! / report.counts[k]!;
      });
      const figures: FigureTree = {
        focused_share: focused / images.size,
        constant_maps: constant / images.size,
        count: images.size,
        focused_share_per_class: perClass,
      };
      const round = (v: number) => Math.round(v * 1e4) / 1e4;
      const mean = {
        cell,
        target: o.target,
        image_size: model.imageSize,
        classes,
        counts: report.counts,
        // One map per class, row-major [image_size × image_size], values in [0, 1].
        maps: classes.map((_, k) => Array.from(report.meanPerClass.subarray(k * hw, (k + 1) * hw), round)),
      };
      const notes =
        constant === images.size
          ? [`every map is constant (${images.size} images): the class scores do not depend on the last block’s patch tokens, so the maps say nothing`]
          : [];
      return {
        figures,
        files: [
          { name: 'gradcam.png', data: report.picture },
          { name: 'gradcam-mean.json', data: `${JSON.stringify(mean)}\n` },
        ],
        notes,
      };
    },
  }),
});
