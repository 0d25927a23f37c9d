import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options, pair, Type } from '../../src/core/schema.ts';

export const weakOptions = {
  scale: pair(Type.Number({ exclusiveMinimum: 0, maximum: 1 }), {
    default: [0.2, 1.0],
    description: 'random resized crop: range of the crop area as a share of the image (the authors: 0.2–1.0 in every stage)',
  }),
  ratio: pair(Type.Number({ exclusiveMinimum: 0 }), { default: [0.75, 1.3333], description: 'random resized crop: range of the crop aspect ratio (w/h)' }),
  flip: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'probability of a horizontal flip' }),
};

export default definePlugin({
  kind: 'augment',
  name: 'weak',
  description: 'random resized crop + random horizontal flip; face boxes are moved with the pixels',
  options: options(weakOptions),
  create: (o) => ({
    name: 'weak',
    apply(images, boxes, rng) {
      const [n, h, w] = images.shape;
      const crops = new Float32Array(n * 4);
      const flips: boolean[] = [];
      const newBoxes = new Float32Array(n * 4);
      const src = boxes.dataSync();
      for (let i = 0; i < n; i++) {
        // torchvision's RandomResizedCrop: area and log-uniform ratio, 10 tries, then the whole image.
        let cw = 1;
        let ch = 1;
        for (let t = 0; t < 10; t++) {
          const area = rng.uniform(o.scale[0], o.scale[1]);
          const r = Math.exp(rng.uniform(Math.log(o.ratio[0]), Math.log(o.ratio[1])));
          const tw = Math.sqrt(area * r);
          const th = Math.sqrt(area / r);
          if (tw <= 1 && th <= 1) {
            cw = tw;
            ch = th;
            break;
          }
        }
        const x0 = rng.uniform(0, 1 - cw);
        const y0 = rng.uniform(0, 1 - ch);
        crops.set([y0, x0, y0 + ch, x0 + cw], i * 4);
        const flip = rng.next() < o.flip;
        flips.push(flip);
        for (let k = 0; k < 4; k += 2) {
          const bx = (src[i * 4 + k]! / w - x0) / cw;
          const by = (src[i * 4 + k + 1]! / h - y0) / ch;
          newBoxes[i * 4 + k] = Math.min(1, Math.max(0, bx)) * w;
          newBoxes[i * 4 + k + 1] = Math.min(1, Math.max(0, by)) * h;
        }
        if (flip) {
          const x1 = newBoxes[i * 4]!;
          newBoxes[i * 4] = w - newBoxes[i * 4 + 2]!;
          newBoxes[i * 4 + 2] = w - x1;
        }
      }
      const out = tf.tidy(() => {
        // A crop of the whole image resamples every pixel onto itself: skipped, the same numbers.
        const whole = crops.every((v, k) => v === (k % 4 < 2 ? 0 : 1));
        const cropped = whole
          ? images
          : tf.image.cropAndResize(images, tf.tensor2d(crops, [n, 4]), tf.range(0, n, 1, 'int32') as tf.Tensor1D, [h, w], 'bilinear');
        const mask = tf
          .tensor1d(
            flips.map((f) => (f ? 1 : 0)),
            'float32',
          )
          .reshape([n, 1, 1, 1]);
        // Gathering columns in reverse order is the flip; far cheaper than tf.reverse on JS backends.
        const flipped = tf.gather(
          cropped,
          tf.tensor1d(
            Array.from({ length: w }, (_, i) => w - 1 - i),
            'int32',
          ),
          2,
        );
        return tf.add(tf.mul(flipped, mask), tf.mul(cropped, tf.sub(1, mask))) as tf.Tensor4D;
      });
      return { images: out, boxes: tf.tensor2d(newBoxes, [n, 4]) };
    },
  }),
});
