import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';

import { formatProfile, RunProfile, type PhaseReport } from '../../src/engine/profile.ts';

/** Busy-waits ms milliseconds (a known amount of wall time in a phase). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // wait
  }
}

function find(phases: readonly PhaseReport[], ...path: string[]): PhaseReport {
  let list = phases;
  let found: PhaseReport | undefined;
  for (const name of path) {
    found = list.find((p) => p.name === name);
    if (!found) throw new Error(`no phase ${path.join('/')}`);
    list = found.children;
  }
  return found!;
}

describe('run profile', () => {
  let previous = '';
  before(async () => {
    previous = tf.getBackend();
    await tf.setBackend('cpu');
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });

  it('times nested phases: each holds its children, self time is the rest, rest is outside all', () => {
    const p = new RunProfile({ kernels: false });
    p.start();
    p.phase('data', () => spin(20));
    p.phase('train', () => {
      spin(10);
      p.phase('optimizer', () => spin(15));
      p.phase('optimizer', () => spin(15));
    });
    spin(10);
    p.stop();
    const r = p.report();
    const data = find(r.phases, 'data');
    const train = find(r.phases, 'train');
    const opt = find(r.phases, 'train', 'optimizer');
    expect(data.ms).to.be.at.least(20);
    expect(opt.calls).to.equal(2);
    expect(opt.ms).to.be.at.least(30);
    expect(train.ms).to.be.at.least(40);
    expect(train.selfMs).to.be.closeTo(train.ms - opt.ms, 1e-9);
    expect(train.selfMs).to.be.at.least(10);
    expect(r.restMs).to.be.closeTo(r.totalMs - data.ms - train.ms, 1e-9);
    expect(r.restMs).to.be.at.least(10);
    expect(r.phases.map((x) => x.name)).to.deep.equal(['train', 'data']); // most time first
  });

  it('attributes kernel time to the innermost phase, split into forward and backward', () => {
    const p = new RunProfile();
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const w = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0.25],
      ]),
    );
    try {
      p.start();
      p.phase('train', () => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar, [w]);
        tf.dispose([value, grads[w.name]!]);
        p.phase('optimizer', () => tf.tidy(() => w.assign(tf.sub(w, 0.01))));
      });
      tf.tidy(() => tf.add(x, 1));
      p.stop();
      const r = p.report();
      const train = find(r.phases, 'train');
      expect(train.kernels.forward).to.be.greaterThan(0);
      expect(train.kernels.backward).to.be.greaterThan(0);
      const opt = find(r.phases, 'train', 'optimizer');
      expect(opt.kernels.calls).to.be.greaterThan(0);
      expect(opt.kernels.backward).to.equal(0);
      expect(r.restKernels.calls).to.equal(1); // the Add outside every phase
      const names = r.byKernel.map((k) => k.name);
      expect(names).to.include.members(['BatchMatMul', 'Square', 'Sum', 'Sub', 'Add']);
      const total = r.byKernel.reduce((s, k) => s + k.calls, 0);
      expect(total).to.equal(train.kernels.calls + opt.kernels.calls + r.restKernels.calls);
      // Kernels are counted once even where one kernel runs others (the gradient of Square uses Multiply).
      for (const k of r.byKernel) expect(k.ms, k.name).to.be.at.least(0);
    } finally {
      p.stop();
      tf.dispose([x, w]);
    }
  });

  it('stops timing kernels when stopped, and refuses misuse with a clear message', () => {
    const engine = tf.engine() as unknown as { runKernel: unknown };
    const original = engine.runKernel;
    const p = new RunProfile();
    expect(() => p.begin('x')).to.throw(/not running \(call start\(\) first\)/);
    p.start();
    expect(engine.runKernel).to.not.equal(original);
    expect(() => new RunProfile().start()).to.throw(/another profile is already timing kernels/);
    p.begin('a');
    expect(() => p.end('b')).to.throw(/innermost open phase is 'a'/);
    expect(() =>
      p.phase('c', () => {
        throw new Error('boom');
      }),
    ).to.throw('boom');
    p.stop(); // closes 'a'
    expect(engine.runKernel).to.equal(original);
    const r = p.report();
    expect(find(r.phases, 'a', 'c').calls).to.equal(1);
    expect(find(r.phases, 'a').calls).to.equal(1);
  });

  it('prints every phase with its share, kernels forward and backward, the rest and the top kernels', async () => {
    const p = new RunProfile();
    p.start();
    await p.phaseAsync('data', async () => {
      spin(5);
      await new Promise((r) => setTimeout(r, 5));
    });
    p.phase('train', () => {
      tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.exp(a)))(tf.ones([64, 64])));
      p.phase('optimizer', () => spin(2));
    });
    p.stop();
    const text = formatProfile(p.report(), { topKernels: 3 });
    const lines = text.split('\n');
    expect(lines[0]).to.match(/^profile: [\d.]+ (ms|s) in all$/);
    expect(text).to.match(/\n {2}data +[\d.]+ ms +[\d.]+ %/);
    expect(text).to.match(/\n {2}train +[\d.]+ ms +[\d.]+ % +kernels [\d.]+ ms \(forward [\d.]+ ms, backward [\d.]+ ms\)/);
    expect(text).to.match(/\n {4}optimizer +[\d.]+ ms/);
    expect(text).to.match(/\n {2}rest \(no phase\)/);
    expect(text).to.match(/kernels by time:\n( {2}\S+ +[\d.]+ ms +[\d.]+ % +\d+ calls\n?){1,3}$/);
    const phaseLines = lines.slice(1, lines.indexOf('kernels by time:'));
    const shares = phaseLines.filter((l) => /^ {2}\S/.test(l) && !l.startsWith('  rest')).map((l) => Number(/([\d.]+) %/.exec(l)![1]));
    const rest = Number(/rest \(no phase\) +[\d.]+ \S+ +([\d.]+) %/.exec(text)![1]);
    expect(shares.reduce((a, b) => a + b, 0) + rest).to.be.closeTo(100, 0.3);
  });
});
