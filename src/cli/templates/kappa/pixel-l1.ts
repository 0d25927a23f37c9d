// A `kappa` plugin: FaceMix's κ from the mean absolute difference of the two images' pixels.
// κ ∈ [0, 1] weights the real images' losses: 0 when the two faces are alike (the mixed image
// is trusted), 1 when they differ. Try it with its recipe:
//   ssfer plugins kappa --plugin pixel-l1.ts
//   ssfer run pixel-l1.yaml --scale smoke
import { definePlugin, options, tf, Type, type KappaInput } from 'ssfer';

/** Mean |a − b| per pair over pixels and channels: [N] in [0, 1] for images in [0, 1]. */
function meanAbsoluteDifference({ imagesA, imagesB }: KappaInput): tf.Tensor1D {
  if (imagesA.shape.join() !== imagesB.shape.join()) throw new Error(`kappa: the two image batches differ in shape: [${imagesA.shape}] and [${imagesB.shape}]`);
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(imagesA, imagesB)), [1, 2, 3]) as tf.Tensor1D);
}

export default definePlugin({
  kind: 'kappa',
  name: 'pixel-l1',
  description: 'κ = clip(gain · mean |a − b| over the pixels, 0, 1); the similarity is 1 − mean |a − b|',
  options: options({
    gain: Type.Number({ exclusiveMinimum: 0, default: 4, description: 'how fast κ reaches 1 as the images differ (4: at a mean difference of 0.25)' }),
  }),
  create: ({ gain }) => ({
    name: 'pixel-l1',
    // The raw figure per pair, for the logs; κ is what FaceMix uses.
    similarity: (input) => tf.tidy(() => tf.sub(1, meanAbsoluteDifference(input)) as tf.Tensor1D),
    kappa: (input) => tf.tidy(() => tf.clipByValue(tf.mul(meanAbsoluteDifference(input), gain), 0, 1) as tf.Tensor1D),
  }),
});
