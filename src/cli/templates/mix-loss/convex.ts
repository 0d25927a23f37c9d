// A `mix-loss` plugin: how FaceMix combines, per sample, the loss of the mixed (virtual) image
// L_v, the losses of the two real images L_i and L_j, and κ. This one moves the weight from the
// virtual image to the real ones as the faces differ:  (1 − κ)·L_v + κ·(L_i + L_j)/2.
// Try it with its recipe:
//   ssfer plugins mix-loss --plugin convex.ts
//   ssfer run convex.yaml --scale smoke
import { definePlugin, options, tf, Type } from 'ssfer';

export default definePlugin({
  kind: 'mix-loss',
  name: 'convex',
  description: 'FaceMix loss (1 − κ)·L_v + κ·w·(L_i + L_j): the virtual image when the faces are alike, the real ones when they differ',
  options: options({
    real_weight: Type.Number({ minimum: 0, default: 0.5, description: 'w, the weight of each real image’s loss' }),
  }),
  create: ({ real_weight }) => ({
    name: 'convex',
    // Every argument is [N], one value per pair; so is the result.
    combine: (lv, li, lj, kappa) => tf.tidy(() => tf.add(tf.mul(tf.sub(1, kappa), lv), tf.mul(tf.mul(kappa, real_weight), tf.add(li, lj))) as tf.Tensor1D),
  }),
});
