// A `mixing` plugin: CutMix (Yun et al., ICCV 2019). Every image of the batch gets a box of its
// partner's pixels pasted in; the loss is the cross-entropy against both labels, each weighted by
// the share of the image it covers. Validate and run it with its recipe:
//   ssfer plugins mixing --plugin cutmix.ts
//   ssfer run cutmix.yaml --scale smoke
import { crossEntropy, definePlugin, options, tf, Type } from 'ssfer';

export default definePlugin({
  kind: 'mixing',
  name: 'cutmix',
  description: 'CutMix: pastes a random box of the partner image; the two labels weighted by the areas',
  options: options({
    alpha: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'the share kept of each image is drawn from Beta(α, α)' }),
    probability: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'share of the steps that mix (the others train on the plain batch)' }),
  }),
  create: ({ alpha, probability }) => ({
    name: 'cutmix',
    loss(batch, ctx) {
      const [n, h, w] = batch.images.shape;
      // The stage's random stream: drawing only from it keeps a run repeatable and resumable.
      if (n < 2 || !ctx.rng.chance(probability)) {
        const loss = tf.tidy(() => tf.mean(crossEntropy(ctx.logits(batch.images), batch.labels, ctx.numClasses, ctx.realLabelSmoothing)) as tf.Scalar);
        return { loss, stats: { pasted: 0 } };
      }
      // One box for the batch, of area (1 − λ)·h·w, centred anywhere and clipped to the image.
      const lambda = ctx.rng.beta(alpha, alpha);
      const side = Math.sqrt(1 - lambda);
      const [cy, cx] = [ctx.rng.int(h), ctx.rng.int(w)];
      const [y0, y1] = [Math.max(0, cy - Math.round((side * h) / 2)), Math.min(h, cy + Math.round((side * h) / 2))];
      const [x0, x1] = [Math.max(0, cx - Math.round((side * w) / 2)), Math.min(w, cx + Math.round((side * w) / 2))];
      // The labels are weighted by the share of pixels actually pasted (the box may be clipped).
      const pasted = ((y1 - y0) * (x1 - x0)) / (h * w);
      const inside = new Float32Array(h * w);
      for (let y = y0; y < y1; y++) inside.fill(1, y * w + x0, y * w + x1);
      // Image i is paired with image (i + shift) mod n: never with itself.
      const shift = 1 + ctx.rng.int(n - 1);
      const partner = Array.from({ length: n }, (_, i) => (i + shift) % n);
      const loss = tf.tidy(() => {
        const mask = tf.tensor4d(inside, [1, h, w, 1]);
        const others = tf.gather(batch.images, partner);
        const mixed = tf.add(tf.mul(batch.images, tf.sub(1, mask)), tf.mul(others, mask)) as tf.Tensor4D;
        const logits = ctx.logits(mixed);
        const own = crossEntropy(logits, batch.labels, ctx.numClasses, ctx.labelSmoothing);
        const theirs = crossEntropy(logits, tf.gather(batch.labels, partner) as tf.Tensor1D, ctx.numClasses, ctx.labelSmoothing);
        return tf.mean(tf.add(tf.mul(own, 1 - pasted), tf.mul(theirs, pasted))) as tf.Scalar;
      });
      // Per-step figures by name: logged, plotted and tracked as they are.
      return { loss, stats: { pasted } };
    },
  }),
});
