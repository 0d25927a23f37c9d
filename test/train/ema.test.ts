import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { Ema } from '../../src/train/ema.ts';

describe('EMA of weights', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('updates θ_ema ← d·θ_ema + (1 − d)·θ (hand-computed)', () => {
    const teacher = new Map([['w', tf.variable(tf.tensor1d([1, -2]), false)]]);
    const student = new Map([['w', tf.variable(tf.tensor1d([3, 2]), true)]]);
    const ema = new Ema(teacher, student, 0.9);
    try {
      ema.update(); // 0.9·1 + 0.1·3 = 1.2;  0.9·(−2) + 0.1·2 = −1.6
      expect(Array.from(teacher.get('w')!.dataSync())).to.satisfy((v: number[]) => Math.abs(v[0]! - 1.2) < 1e-6 && Math.abs(v[1]! + 1.6) < 1e-6);
      student.get('w')!.assign(tf.tensor1d([2, 0]));
      ema.update(); // 0.9·1.2 + 0.1·2 = 1.28;  0.9·(−1.6) + 0 = −1.44
      const v = teacher.get('w')!.dataSync();
      expect(v[0]).to.be.closeTo(1.28, 1e-6);
      expect(v[1]).to.be.closeTo(-1.44, 1e-6);
      ema.update(0); // decay 0: the teacher becomes the student (FixMatch)
      expect(Array.from(teacher.get('w')!.dataSync())).to.deep.equal([2, 0]);
      expect(ema.updates).to.equal(3);
    } finally {
      [...teacher.values(), ...student.values()].forEach((v) => v.dispose());
    }
  });

  it('saves and restores the averaged weights and the update count', () => {
    const teacher = new Map([['w', tf.variable(tf.tensor1d([1]), false)]]);
    const student = new Map([['w', tf.variable(tf.tensor1d([5]), true)]]);
    const ema = new Ema(teacher, student, 0.5);
    try {
      ema.update(); // 3
      const state = ema.state();
      ema.update(); // 4
      ema.loadState(state);
      tf.dispose(Object.values(state));
      expect(teacher.get('w')!.dataSync()[0]).to.equal(3);
      expect(ema.updates).to.equal(1);
      ema.copy();
      expect(teacher.get('w')!.dataSync()[0]).to.equal(5);
    } finally {
      [...teacher.values(), ...student.values()].forEach((v) => v.dispose());
    }
  });

  it('refuses two models that differ', () => {
    const a = new Map([['w', tf.variable(tf.zeros([2]), false)]]);
    const b = new Map([['w', tf.variable(tf.zeros([3]), true)]]);
    try {
      expect(() => new Ema(a, b, 0.99)).to.throw(/'w' has shape \[2\] in the EMA copy but \[3\]/);
    } finally {
      [...a.values(), ...b.values()].forEach((v) => v.dispose());
    }
  });
});
