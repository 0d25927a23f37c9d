import type { Analysis } from '../../src/contracts/analysis.ts';
import { isTokenBackbone } from '../../src/contracts/backbone.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type, type Static } from '../../src/core/schema.ts';
import { attackRegions, attackStripPng } from './internal/fgsm.ts';
import { gradCamAll } from './internal/gradcam.ts';

const fgsmOptions = options(
  {
    epsilons: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), {
      minItems: 1,
      uniqueItems: true,
      default: [0, 0.02, 0.04, 0.06, 0.08, 0.1],
      description: 'attack strengths, in [0, 1] pixel units (the paper’s Table 7: 0 to 0.10); ε = 0 is the clean accuracy',
    }),
    threshold: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.3,
      description: 'the “emotion focused” region: pixels whose Grad-CAM value is above it (the paper: 0.3); the rest is the unfocused region',
    }),
    strip: Type.Integer({
      minimum: 0,
      maximum: 32,
      default: 3,
      description: 'test images shown in fgsm-regions.png (the paper’s Fig. 9), each attacked in both regions',
    }),
  },
  { additionalProperties: false },
);

type FgsmOptions = Static<typeof fgsmOptions>;

/** An ε as a figure's key: as YAML and JSON write the number (0.1 for 0.10). */
const key = (eps: number) => String(eps);

export default definePlugin({
  kind: 'analysis',
  name: 'fgsm-regions',
  description:
    'FGSM (sign of the input gradient of the loss) applied only inside the Grad-CAM focused region (CAM above the threshold) or only outside it: accuracy per ε for both (the paper’s Table 7, Fig. 9)',
  options: fgsmOptions,
  requires: [
    { path: 'model.backbone', provides: 'tokens', because: 'the regions come from Grad-CAM on the patch tokens of the last transformer block; choose vit' },
  ],
  figures: (o: FgsmOptions) => [...o.epsilons.flatMap((e) => [`inside.${key(e)}`, `outside.${key(e)}`]), 'focused_share', 'count', 'threshold'],
  create: (o): Analysis => ({
    name: 'fgsm-regions',
    async run({ model, images, batchSize, cell }) {
      if (!isTokenBackbone(model)) throw new Error(`fgsm-regions: the backbone '${model.kind}' has no patch tokens; the Grad-CAM regions here need a ViT`);
      const size = model.imageSize;
      const px = size * size * model.channels;
      const correct = { inside: o.epsilons.map(() => 0), outside: o.epsilons.map(() => 0) };
      let focused = 0;
      // One batch at a time: its maps (of the predicted class), then the attacks in both regions.
      let strip: { images: Float32Array; labels: Int32Array; maps: Float32Array } | null = null;
      for (let s = 0; s < images.size; s += batchSize) {
        const n = Math.min(batchSize, images.size - s);
        const x = images.images.subarray(s * px, (s + n) * px);
        const y = images.labels.subarray(s, s + n);
        const { maps } = gradCamAll(model, x, n, batchSize);
        const r = attackRegions(model, x, y, maps, n, { epsilons: o.epsilons, threshold: o.threshold, batchSize });
        r.inside.forEach((a, k) => (correct.inside[k]! += Math.round(a * n)));
        r.outside.forEach((a, k) => (correct.outside[k]! += Math.round(a * n)));
        focused += r.focusedShare * n;
        if (s === 0 && o.strip > 0) {
          const m = Math.min(o.strip, n);
          strip = { images: x.slice(0, m * px), labels: y.slice(0, m), maps: maps.slice(0, m * size * size) };
        }
      }
      const count = images.size;
      const byEps = (list: number[]) => Object.fromEntries(o.epsilons.map((e, k) => [key(e), list[k]! / count]));
      const files = strip
        ? [
            {
              name: 'fgsm-regions.png',
              data: await attackStripPng(model, strip.images, strip.labels, strip.maps, strip.labels.length, { epsilons: o.epsilons, threshold: o.threshold }),
            },
          ]
        : [];
      const focusedShare = focused / count;
      const notes: string[] = [];
      if (focusedShare === 0) notes.push(`no pixel of any map is above ${o.threshold}: the focused region is empty, so attacking it changes nothing (${cell})`);
      if (focusedShare === 1)
        notes.push(`every pixel of every map is above ${o.threshold}: the unfocused region is empty, so attacking it changes nothing (${cell})`);
      return {
        figures: { inside: byEps(correct.inside), outside: byEps(correct.outside), focused_share: focusedShare, count, threshold: o.threshold },
        files,
        notes,
      };
    },
  }),
});
