import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { contentKey, LruCache } from '../../../plugins/kappa/internal/cache.ts';
import { createRegistry } from '../../../src/core/registry.ts';

describe('κ feature cache', () => {
  it('evicts the least recently used entries beyond its byte budget', () => {
    const c = new LruCache<string, number[]>(10, (v) => v.length);
    c.set('a', [1, 2, 3, 4]);
    c.set('b', [1, 2, 3, 4]);
    expect(c.get('a')).to.deep.equal([1, 2, 3, 4]); // a is now the most recent
    c.set('c', [1, 2, 3, 4]); // 12 > 10: b goes
    expect(c.get('b')).to.equal(undefined);
    expect(c.get('a')).to.not.equal(undefined);
    expect(c.get('c')).to.not.equal(undefined);
    c.set('huge', Array(11).fill(0)); // larger than the whole budget: not kept
    expect(c.get('huge')).to.equal(undefined);
  });

  it('keys images by content', () => {
    const x = new Float32Array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]);
    expect(contentKey(x, 0, 3)).to.equal(contentKey(x, 3, 3));
    expect(contentKey(x, 0, 3)).to.not.equal(contentKey(new Float32Array([0.1, 0.2, 0.30001]), 0, 3));
  });

  it('FSIM gives the same values with and without the cache, repeated pairs included', async () => {
    await tf.setBackend('cpu');
    const registry = await createRegistry();
    const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
    const cached = registry.create('kappa', { use: 'fsim' }, ctx);
    const plain = registry.create('kappa', { use: 'fsim', cache_mb: 0 }, ctx);
    const a = tf.randomUniform([4, 24, 24, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const b = tf.reverse(a, 0) as tf.Tensor4D; // every image is both an A and a B
    const boxes = tf.zeros([4, 4]) as tf.Tensor2D;
    const input = { imagesA: a, imagesB: b, boxesA: boxes, boxesB: boxes };
    const first = Array.from(cached.similarity(input).dataSync());
    const second = Array.from(cached.similarity(input).dataSync());
    const reference = Array.from(plain.similarity(input).dataSync());
    expect(first).to.deep.equal(reference);
    expect(second).to.deep.equal(reference);
    expect(first[0]).to.equal(first[3]); // (x0, x3) and (x3, x0): FSIM is symmetric
    tf.dispose([a, b, boxes]);
  });
});
