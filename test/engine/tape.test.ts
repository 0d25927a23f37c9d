import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { withoutTape } from '../../src/engine/tape.ts';

// withoutTape: what it computes is a constant to the gradient, and nothing of it is recorded.

/** d/dv of Σ v + Σ g(v) at v = [1, 2, 3], and the kernels the gradient computation ran. */
async function gradient(g: (v: tf.Tensor) => tf.Tensor): Promise<{ grad: number[]; kernels: string[] }> {
  const v = tf.variable(tf.tensor1d([1, 2, 3]));
  const before = tf.memory().numTensors;
  let grad: number[] = [];
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => tf.add(tf.sum(v), tf.sum(g(v))) as tf.Scalar, [v]);
    grad = Array.from(grads[v.name]!.dataSync());
    tf.dispose([value, ...Object.values(grads)]);
  });
  expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  v.dispose();
  return { grad, kernels: info.kernels.map((k) => k.name) };
}

describe('withoutTape', () => {
  it('gives the gradient nothing through what it computes: d/dv (Σ v + Σ 2v) is 3 taped, 1 with 2v off the tape', async () => {
    const taped = await gradient((v) => tf.mul(v, 2));
    const off = await gradient((v) => withoutTape(() => tf.mul(v, 2)));
    expect(taped.grad).to.deep.equal([3, 3, 3]);
    expect(off.grad).to.deep.equal([1, 1, 1]);
  });

  it('records nothing: the op keeps no clone of its inputs for a backward pass', async () => {
    const taped = await gradient((v) => tf.mul(v, 2));
    const off = await gradient((v) => withoutTape(() => tf.mul(v, 2)));
    // On the tape, Mul keeps clones of both its inputs (an Identity kernel each); Sum and Add are
    // taped in both.
    const clones = (r: { kernels: string[] }) => r.kernels.filter((k) => k === 'Identity').length;
    expect(clones(taped) - clones(off)).to.equal(2);
  });

  it('gives the same values as the ops on the tape, and records again after it returns or throws', async () => {
    const x = tf.tensor1d([0.1, -2.5, 7]);
    expect(Array.from(withoutTape(() => tf.exp(x)).dataSync())).to.deep.equal(Array.from(tf.exp(x).dataSync()));
    expect(() =>
      withoutTape(() => {
        throw new Error('inside');
      }),
    ).to.throw('inside');
    expect((await gradient((v) => tf.mul(v, 2))).grad).to.deep.equal([3, 3, 3]);
    x.dispose();
  });
});
