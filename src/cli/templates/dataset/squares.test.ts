// Tests of the squares dataset plugin, with Node's test runner: ssfer test squares.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPlugin, type Split } from 'ssfer';
import plugin from './squares.ts';

const pixel = (s: Split, size: number, i: number, x: number, y: number) => s.images[((i * size + y) * size + x) * 3]!;

test('squares: both splits at the size asked for, balanced classes, pixels in [0, 1]', async () => {
  const source = await createPlugin(plugin, { classes: 4 });
  const data = await source.load({ imageSize: 12, trainSize: 20, testSize: 8 });
  assert.deepEqual(data.classes, ['neutral', 'happiness', 'sadness', 'surprise']);
  assert.equal(data.imageSize, 12);
  for (const [split, n] of [
    [data.train, 20],
    [data.test, 8],
  ] as const) {
    assert.equal(split.size, n);
    assert.equal(split.images.length, n * 12 * 12 * 3);
    assert.equal(split.boxes.length, n * 4);
    assert.ok(split.images.every((v) => v >= 0 && v <= 1));
    const counts = [0, 1, 2, 3].map((c) => split.labels.filter((y) => y === c).length);
    assert.deepEqual(counts, [n / 4, n / 4, n / 4, n / 4]);
  }
});

test('squares: the box is the bright square, and where it sits tells the class', async () => {
  const source = await createPlugin(plugin, { classes: 4 });
  const { train } = await source.load({ imageSize: 16, trainSize: 8, testSize: 4 });
  for (let i = 0; i < train.size; i++) {
    const [x1, y1, x2, y2] = train.boxes.subarray(i * 4, i * 4 + 4);
    assert.ok(x1! >= 0 && y1! >= 0 && x2! <= 16 && y2! <= 16 && x2! > x1! && y2! > y1!);
    assert.ok(pixel(train, 16, i, x1!, y1!) >= 0.7, 'inside the box: bright');
    // Class 0 sits right of the centre, class 2 left of it.
    const cx = (x1! + x2!) / 2;
    if (train.labels[i] === 0) assert.ok(cx > 10, `class 0 at x ${cx}`);
    if (train.labels[i] === 2) assert.ok(cx < 6, `class 2 at x ${cx}`);
  }
});

test('squares: the same seed draws the same images, another seed others; the pool has the size asked for', async () => {
  const [a, b, c] = await Promise.all([createPlugin(plugin, {}, { seed: 1 }), createPlugin(plugin, {}, { seed: 1 }), createPlugin(plugin, {}, { seed: 2 })]);
  const request = { imageSize: 8, trainSize: 7, testSize: 7 };
  const [da, db, dc] = await Promise.all([a.load(request), b.load(request), c.load(request)]);
  assert.deepEqual(da.train.images, db.train.images);
  assert.notDeepEqual(da.train.images, dc.train.images);
  const pool = await a.pool('faces', 5, 8);
  assert.equal(pool.size, 5);
  assert.equal(pool.images.length, 5 * 8 * 8 * 3);
  assert.deepEqual(a.poolKey(), b.poolKey());
  assert.notDeepEqual(a.poolKey(), c.poolKey());
});
