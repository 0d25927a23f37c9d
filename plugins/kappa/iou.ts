import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import type { KappaInput } from '../mixing/internal/kinds.ts';
import { checkBoxes, oneMinusClipped } from './internal/tensors.ts';

/**
 * IoU on continuous pixel corners (area = (x2 − x1)·(y2 − y1), no +1), as the authors' getiou.
 * A box with x2 < x1 or y2 < y1 counts as empty.
 */
function boxIou(boxesA: tf.Tensor2D, boxesB: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [ax1, ay1, ax2, ay2] = tf.unstack(boxesA, 1) as [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
    const [bx1, by1, bx2, by2] = tf.unstack(boxesB, 1) as [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
    const extent = (lo: tf.Tensor1D, hi: tf.Tensor1D) => tf.relu(tf.sub(hi, lo));
    const inter = tf.mul(extent(tf.maximum(ax1, bx1), tf.minimum(ax2, bx2)), extent(tf.maximum(ay1, by1), tf.minimum(ay2, by2)));
    const areaA = tf.mul(extent(ax1, ax2), extent(ay1, ay2));
    const areaB = tf.mul(extent(bx1, bx2), extent(by1, by2));
    const union = tf.sub(tf.add(areaA, areaB), inter);
    // divNoNan: two empty boxes have union 0 and are given IoU 0 rather than NaN.
    return tf.divNoNan(inter, union) as tf.Tensor1D;
  });
}

export default definePlugin({
  kind: 'kappa',
  name: 'iou',
  description: "κ = 1 − IoU of the two face boxes (intersection area / union area; an empty union gives IoU 0, so κ 1); the paper's adopted κ",
  options: options({}, { additionalProperties: false }),
  create() {
    return {
      name: 'iou',
      similarity(input: KappaInput): tf.Tensor1D {
        checkBoxes('iou', input);
        return boxIou(input.boxesA, input.boxesB);
      },
      kappa(input: KappaInput): tf.Tensor1D {
        checkBoxes('iou', input);
        return tf.tidy(() => oneMinusClipped(boxIou(input.boxesA, input.boxesB)));
      },
    };
  },
});
