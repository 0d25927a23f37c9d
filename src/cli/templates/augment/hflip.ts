// An `augment` plugin: a random horizontal flip of each image of a batch, its face box mirrored
// with it (FaceMix's κ and the face-box plugins read the boxes, so they must follow the pixels).
// Try it with its recipe:
//   ssfer plugins augment --plugin hflip.ts
//   ssfer run hflip.yaml --scale smoke
import { definePlugin, options, tf, Type } from 'ssfer';

export default definePlugin({
  kind: 'augment',
  name: 'hflip',
  description: 'flips each image left–right with a probability; the face boxes are mirrored with the pixels',
  options: options({
    probability: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'chance that an image is flipped' }),
  }),
  create: ({ probability }) => ({
    name: 'hflip',
    // images [N, H, W, C] in [0, 1]; boxes [N, 4] as pixel corners (x1, y1, x2, y2). Both results are new tensors.
    apply(images, boxes, rng) {
      const [n, , w] = images.shape;
      // Draw from the stage's stream, one number per image, so runs repeat and resume exactly.
      const flip = Array.from({ length: n }, () => rng.chance(probability));
      const corners = boxes.arraySync();
      const moved = corners.map(([x1, y1, x2, y2], i) => (flip[i] ? [w - x2!, y1!, w - x1!, y2!] : [x1!, y1!, x2!, y2!]));
      return tf.tidy(() => {
        const mirrored = tf.reverse(images, 2);
        const mask = tf.tensor1d(flip.map((f) => (f ? 1 : 0))).reshape([n, 1, 1, 1]);
        return {
          images: tf.add(tf.mul(mirrored, mask), tf.mul(images, tf.sub(1, mask))) as tf.Tensor4D,
          boxes: tf.tensor2d(moved, [n, 4]),
        };
      });
    },
  }),
});
