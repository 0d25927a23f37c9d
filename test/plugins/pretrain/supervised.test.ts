import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import vitPlugin, { type VitOptions } from '../../../plugins/backbone/vit.ts';
import type { ImagePool } from '../../../src/contracts/dataset.ts';
import type { PretrainState, StageHooks, StepLog } from '../../../src/contracts/stages.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { Rng } from '../../../src/core/rng.ts';

const pctx: PluginContext = {
  seed: 5,
  scale: 'smoke',
  recipeDir: '.',
  resolve: () => {
    throw new Error('not used');
  },
};
const TINY: VitOptions = { preset: 'tiny', dim: 16, depth: 1, heads: 2, mlp_ratio: 2, image_size: 16, patch_size: 8, pool: 'mean' };

/** Two classes told apart by brightness, plus noise. */
function labeledPool(size: number, withLabels = true): ImagePool {
  const rng = new Rng(4);
  const px = 16 * 16 * 3;
  const images = new Float32Array(size * px);
  const labels = Int32Array.from({ length: size }, (_, i) => i % 2);
  for (let i = 0; i < size; i++) for (let k = 0; k < px; k++) images[i * px + k] = Math.min(1, Math.max(0, (labels[i] ? 0.7 : 0.3) + rng.gauss(0, 0.1)));
  return withLabels ? { kind: 'generic', imageSize: 16, size, images, labels, numClasses: 2 } : { kind: 'generic', imageSize: 16, size, images };
}

function context(pool: ImagePool, steps: StepLog[]): PretrainState & { hooks: StageHooks } {
  return { backbone: vitPlugin.create(TINY, pctx), pool: async () => pool, seed: 3, hooks: { onStep: (l) => steps.push(l), shouldStop: () => false } };
}

/** A pretrain stage's arguments: the state and its hooks. */
const args = (ctx: PretrainState & { hooks: StageHooks }): [PretrainState, StageHooks] => [ctx, ctx.hooks];

describe('supervised pre-training', function () {
  let registry: PluginRegistry;
  before(async () => {
    await tf.setBackend('cpu');
    registry = await createRegistry();
  });

  it('learns the pool’s classes and returns the encoder without its head', async () => {
    const before = tf.memory().numTensors;
    const steps: StepLog[] = [];
    const p = registry.create(
      'pretrain',
      { use: 'supervised', epochs: 15, warmup_epochs: 1, lr: 3e-3, batch_size: 8, label_smoothing: 0, pool: { size: 16 }, augment: { use: 'none' } },
      pctx,
    );
    const out = await p.run(...args(context(labeledPool(16), steps)));
    expect(steps).to.have.length(30);
    const mean = (xs: StepLog[]) => xs.reduce((a, s) => a + s.metrics.loss!, 0) / xs.length;
    expect(mean(steps.slice(-4))).to.be.lessThan(0.5 * mean(steps.slice(0, 4)));
    expect(out.summary).to.match(/^supervised pre-training: 15 epochs, 30 steps on 16 generic images, 2 classes/);
    const names = Object.keys(out.weights!);
    expect(names.some((n) => n.startsWith('head.'))).to.equal(false);
    const fresh = vitPlugin.create(TINY, pctx).build(7, 9);
    expect(fresh.loadState(out.weights!, { allowMissing: ['head.'] }).missing.every((n) => n.startsWith('head.'))).to.equal(true);
    fresh.dispose();
    tf.dispose(Object.values(out.weights!));
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('refuses a pool without labels', async () => {
    const p = registry.create('pretrain', { use: 'supervised', epochs: 1, pool: { size: 4 } }, pctx);
    let message = '';
    await p.run(...args(context(labeledPool(4, false), []))).catch((e: Error) => (message = e.message));
    expect(message).to.match(/no labels/);
  });
});
