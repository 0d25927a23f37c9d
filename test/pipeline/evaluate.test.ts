import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { createRegistry } from '../../src/core/registry.ts';
import { evaluate } from '../../src/pipeline/evaluate.ts';

describe('evaluation', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('scores a split, and refuses an empty one instead of reporting 0 %', async () => {
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    const data = await registry.create('dataset', { use: 'synthetic-faces', classes: 7 }, ctx).load({ imageSize: 16, trainSize: 14, testSize: 7 });
    const model = registry.create('backbone', { use: 'vit', preset: 'tiny', dim: 16, depth: 1, heads: 2, image_size: 16, patch_size: 8 }, ctx).build(7, 3);
    try {
      const all = evaluate(model, data.test, 16, 7, 4);
      expect(all.count).to.equal(7);
      expect(all.confusion.flat().reduce((a, b) => a + b, 0)).to.equal(7);
      expect(() => evaluate(model, data.test, 16, 7, 4, new Int32Array(0))).to.throw(/no images to evaluate on/);
    } finally {
      model.dispose();
    }
  });
});
