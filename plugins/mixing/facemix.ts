import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { UsageError } from '../../src/core/errors.ts';
import { options, slot, Type } from '../../src/core/schema.ts';
import { withoutTape } from '../../src/engine/tape.ts';
import { crossEntropy, softTargetCrossEntropy } from '../../src/train/losses.ts';
import { facemixKinds } from './internal/kinds.ts';
import { mixPairs } from './internal/pair.ts';

/** FaceMix's nested kinds: the κ metric and the loss combination (see internal/kinds.ts). */
export const kinds = facemixKinds;

export default definePlugin({
  kind: 'mixing',
  name: 'facemix',
  description: 'FaceMix: Mixup plus the real images’ losses weighted by κ from the face pair (κ plugin), combined by a mix-loss variant',
  options: options({
    alpha: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Beta(α, α) parameter (the authors: 1.0)' }),
    kappa: slot('kappa', 'iou', 'how κ is computed from the pair (the paper: κ = 1 − IoU of the face boxes)'),
    loss: slot('mix-loss', 'L4', 'how L_v, L_i, L_j and κ combine (the paper: L4)'),
    allow_constant_kappa: Type.Boolean({
      default: false,
      description:
        'train on even when κ is the same for every pair of an epoch (FaceMix is then Mixup with a constant weight on the real images); the results say so',
    }),
  }),
  create(options, ctx) {
    const kappa = ctx.resolve('kappa', options.kappa);
    const combine = ctx.resolve('mix-loss', options.loss);
    const watch = new KappaWatch();
    return {
      name: `facemix(${kappa.name}, ${combine.name})`,
      loss(batch, mctx) {
        let lambda = 0;
        let kappaMean = 0;
        const loss = tf.tidy(() => {
          // The pair, its targets and κ are data to the gradient: computed off the tape.
          const { m, k } = withoutTape(() => {
            const pair = mixPairs(batch, mctx, options.alpha);
            // κ and the real losses come from the original images, not the mixed batch (the
            // authors' code mixes in place and so computes them on mixed images — a defect).
            const kk = tf.tidy(() =>
              kappa.kappa({
                imagesA: batch.images,
                imagesB: pair.partnerImages,
                boxesA: batch.boxes,
                boxesB: tf.gather(batch.boxes, pair.partner) as tf.Tensor2D,
              }),
            );
            return { m: pair, k: kk };
          });
          lambda = m.lambda;
          kappaMean = tf.mean(k).dataSync()[0]!;
          watch.add(k.dataSync() as Float32Array, batch.boxes.dataSync(), batch.images.shape[2], batch.images.shape[1]);
          // One forward pass over virtual and real images together: per-op overhead dominates
          // small models on CPU backends, so one batch of 2N is cheaper than two of N.
          const n = batch.images.shape[0];
          const logits = mctx.logits(tf.concat([m.mixed, batch.images], 0) as tf.Tensor4D);
          const lv = softTargetCrossEntropy(tf.slice(logits, [0, 0], [n, -1]) as tf.Tensor2D, m.targets);
          const li = crossEntropy(tf.slice(logits, [n, 0], [n, -1]) as tf.Tensor2D, batch.labels, mctx.numClasses, mctx.realLabelSmoothing);
          const lj = tf.gather(li, m.partner) as tf.Tensor1D;
          return tf.mean(combine.combine(lv, li, lj, k)) as tf.Scalar;
        });
        return { loss, stats: { lambda, kappa: kappaMean } };
      },
      endEpoch(epoch) {
        const seen = watch.take();
        if (!seen) return;
        const what = `FaceMix(${kappa.name}) in epoch ${epoch + 1}`;
        if (seen.nan)
          throw new UsageError(
            `${what}: κ is NaN for some pairs (${seen.cause ?? `the ${kappa.name} κ of these images is undefined`}); check the face boxes and images the stage is given`,
          );
        if (seen.max - seen.min > 1e-7) return;
        const fix =
          'give the stage real face boxes (data.boxes: { use: auto } finds them with the face-api detector where a dataset has no annotations, { use: face-api } always detects them, or use a dataset with annotated boxes), ' +
          'or set pipeline.supervised.mixing.allow_constant_kappa: true to train with it anyway';
        const constant = `κ is ${fmt(seen.min)} for every one of ${seen.pairs} pairs`;
        if (!options.allow_constant_kappa) {
          throw new UsageError(
            `${what}: ${constant}${seen.cause ? ` because ${seen.cause}` : ''}, so FaceMix is Mixup with a constant weight on the real images; ${fix}`,
          );
        }
        return `FaceMix ran with a constant κ ${fmt(seen.min)}${seen.cause ? ` (${seen.cause})` : ''}: allow_constant_kappa was set, so its rows are Mixup with a constant weight on the real images`;
      },
    };
  },
});

const fmt = (v: number) => String(Number(v.toPrecision(4)));

/**
 * κ over the steps of an epoch, and what the boxes were: a κ that never changes (every box the
 * whole image, every box the same) turns FaceMix into Mixup without a word, so it is watched.
 */
class KappaWatch {
  private min = Infinity;
  private max = -Infinity;
  private nan = false;
  private pairs = 0;
  private wholeImage = true;
  private firstBox: number[] | null = null;
  private sameBox = true;

  add(kappa: ArrayLike<number>, boxes: ArrayLike<number>, width: number, height: number): void {
    for (let i = 0; i < kappa.length; i++) {
      const v = kappa[i]!;
      if (Number.isNaN(v)) this.nan = true;
      else {
        this.min = Math.min(this.min, v);
        this.max = Math.max(this.max, v);
      }
    }
    this.pairs += kappa.length;
    for (let i = 0; i + 3 < boxes.length; i += 4) {
      const box = [boxes[i]!, boxes[i + 1]!, boxes[i + 2]!, boxes[i + 3]!];
      const [x1, y1, x2, y2] = box;
      if (!(x1 <= 0.5 && y1 <= 0.5 && x2 >= width - 0.5 && y2 >= height - 0.5)) this.wholeImage = false;
      this.firstBox ??= box;
      if (box.some((c, j) => Math.abs(c - this.firstBox![j]!) > 1e-3)) this.sameBox = false;
    }
  }

  /** What was seen since the last call (null: no step), and a fresh start. */
  take(): { min: number; max: number; nan: boolean; pairs: number; cause: string | null } | null {
    const seen = this.pairs === 0 ? null : { min: this.min, max: this.max, nan: this.nan, pairs: this.pairs, cause: this.cause() };
    Object.assign(this, { min: Infinity, max: -Infinity, nan: false, pairs: 0, wholeImage: true, firstBox: null, sameBox: true });
    return seen;
  }

  private cause(): string | null {
    if (this.firstBox === null) return null;
    if (this.wholeImage) return 'every face box is the whole image';
    if (this.sameBox) return `every image has the identical face box [${this.firstBox.map((c) => fmt(c)).join(', ')}]`;
    return null;
  }
}
