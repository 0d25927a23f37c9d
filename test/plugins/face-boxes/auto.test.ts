import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Split } from '../../../src/contracts/dataset.ts';
import type { FaceBoxSource } from '../../../src/contracts/training.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { tempDir } from '../../helpers.ts';
import { squareDetector, squares } from './square-detector.ts';

let registry: PluginRegistry;
const dir = tempDir('ssfer-auto-boxes-');
const ctx = { seed: 1, scale: 'smoke', recipeDir: dir };

// Three 32-px images, each with its square; the dataset's own boxes differ from every square.
const images = squares(32, [{ box: [2, 3, 12, 15] }, { box: [10, 10, 30, 28] }, { box: [16, 4, 28, 12] }]);
const own = Float32Array.from([1, 1, 31, 31, 0, 0, 32, 32, 5, 6, 25, 26]);
const split = (annotatedBoxes?: number[]): Split => ({
  size: 3,
  images,
  labels: new Int32Array(3),
  boxes: own,
  ...(annotatedBoxes ? { annotatedBoxes: Uint8Array.from(annotatedBoxes) } : {}),
});
const rows = (b: Float32Array) => [0, 1, 2].map((i) => Array.from(b.subarray(4 * i, 4 * i + 4)));

function auto(): FaceBoxSource {
  return registry.create('face-boxes', { use: 'auto', detector: { use: 'onnx', model: 'square.onnx', input_size: 32 } }, ctx);
}

describe('face-boxes plugin: auto (annotated boxes where the dataset has them, the detector elsewhere)', () => {
  before(async () => {
    registry = await createRegistry();
    fs.writeFileSync(path.join(dir, 'square.onnx'), squareDetector(32, [{}]));
  });

  it('keeps a fully annotated split’s boxes and says so', async () => {
    const out = await auto().boxes(split([1, 1, 1]), { imageSize: 32 });
    expect(out.boxes).to.equal(own);
    expect(out.note).to.equal("face boxes: the dataset's annotated boxes");
  });

  it('detects every face of a split without annotations, naming the detector', async () => {
    const out = await auto().boxes(split(), { imageSize: 32 });
    expect(rows(out.boxes)).to.deep.equal([
      [2, 3, 12, 15],
      [10, 10, 30, 28],
      [16, 4, 28, 12],
    ]);
    expect(out.note).to.equal(
      'face boxes: ONNX detector square.onnx, 0 of 3 images without exactly one detected face used the central fallback box (the dataset has no annotated boxes)',
    );
    expect(own).to.deep.equal(Float32Array.from([1, 1, 31, 31, 0, 0, 32, 32, 5, 6, 25, 26])); // the split's boxes are left alone
  });

  it('detects only the images without an annotated box', async () => {
    const out = await auto().boxes(split([1, 0, 1]), { imageSize: 32 });
    expect(rows(out.boxes)).to.deep.equal([
      [1, 1, 31, 31],
      [10, 10, 30, 28],
      [5, 6, 25, 26],
    ]);
    expect(out.note).to.equal(
      'face boxes: annotated for 2 of 3 images; for the other 1, ONNX detector square.onnx, 0 of 1 images without exactly one detected face used the central fallback box',
    );
  });

  it('refuses a detector slot that is not a detector; the default detector is face-api', () => {
    expect(() => registry.create('face-boxes', { use: 'auto', detector: { use: 'annotations' } }, ctx)).to.throw(
      /detector: 'annotations' is not a face detector; choose face-api or onnx/,
    );
    expect(registry.create('face-boxes', { use: 'auto' }, ctx).name).to.equal('auto');
    const schema = registry.get('face-boxes', 'auto').options as { properties: { detector: { default: unknown } } };
    expect(schema.properties.detector.default).to.deep.equal({ use: 'face-api' });
  });

  it('annotations: the split’s boxes, and a note saying when they are the whole image', async () => {
    const annotations = registry.create('face-boxes', { use: 'annotations' }, ctx);
    expect((await annotations.boxes(split([1, 1, 1]), { imageSize: 32 })).note).to.equal("face boxes: the dataset's annotated boxes");
    expect((await annotations.boxes(split(), { imageSize: 32 })).note).to.equal(
      'face boxes: annotations, but the dataset has none: every box is the whole image',
    );
    const partly = await annotations.boxes(split([0, 1, 1]), { imageSize: 32 });
    expect(partly.boxes).to.equal(own);
    expect(partly.note).to.equal('face boxes: annotated for 2 of 3 images, the whole image for the other 1');
  });
});
