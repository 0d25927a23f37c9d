import * as tf from '@tensorflow/tfjs';
import { definePlugin } from '../../src/core/plugin.ts';
import { options } from '../../src/core/schema.ts';
import type { MixLoss } from '../mixing/internal/kinds.ts';

type Combine = MixLoss['combine'];

/** The four FaceMix loss variants of Table 15, per sample. L_v: virtual image; L_i, L_j: the two real images. */
const variants: Record<'L1' | 'L2' | 'L3' | 'L4', { formula: string; combine: Combine }> = {
  L1: { formula: '(1 − κ)·L_v + L_i + L_j', combine: (lv, li, lj, k) => tf.tidy(() => tf.add(tf.mul(tf.sub(1, k), lv), tf.add(li, lj))) },
  L2: { formula: 'L_v + (1 − κ)·(L_i + L_j)', combine: (lv, li, lj, k) => tf.tidy(() => tf.add(lv, tf.mul(tf.sub(1, k), tf.add(li, lj)))) },
  L3: { formula: 'κ·L_v + L_i + L_j', combine: (lv, li, lj, k) => tf.tidy(() => tf.add(tf.mul(k, lv), tf.add(li, lj))) },
  L4: { formula: 'L_v + κ·(L_i + L_j) (the paper’s choice)', combine: (lv, li, lj, k) => tf.tidy(() => tf.add(lv, tf.mul(k, tf.add(li, lj)))) },
};

const plugins = Object.entries(variants).map(([name, v]) =>
  definePlugin({
    kind: 'mix-loss',
    name,
    description: `FaceMix loss ${name} = ${v.formula}`,
    options: options({}),
    create: () => ({ name, combine: (lv, li, lj, k) => v.combine(lv, li, lj, k) as tf.Tensor1D }),
  }),
);

export default plugins;
