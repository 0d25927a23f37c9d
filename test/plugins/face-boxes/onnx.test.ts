import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import type { Split } from '../../../src/contracts/dataset.ts';
import type { FaceBoxSource } from '../../../src/contracts/training.ts';
import { imageDigest } from '../../../plugins/face-boxes/internal/cache.ts';
import { tempDir } from '../../helpers.ts';
import { squareDetector, squares, type DetectorRow } from './square-detector.ts';
import { encodeModel } from '../../../src/onnx/proto.ts';

/** A split of `count` images without annotated boxes. */
function splitOf(images: Float32Array, count: number): Split {
  return { size: count, images, labels: new Int32Array(count), boxes: new Float32Array(count * 4) };
}

let registry: PluginRegistry;
const dir = tempDir('ssfer-onnx-');

function writeModel(name: string, bytes: Uint8Array): string {
  fs.writeFileSync(path.join(dir, name), bytes);
  return name;
}

function detector(model: string, options: Record<string, unknown> = {}): FaceBoxSource {
  return registry.create('face-boxes', { use: 'onnx', model, input_size: 32, ...options }, { seed: 1, scale: 'smoke', recipeDir: dir });
}

async function boxes(
  rows: readonly DetectorRow[],
  images: Float32Array,
  count: number,
  size: number,
  options: Record<string, unknown> = {},
  format: 'yolo' | 'corners' = 'yolo',
): Promise<number[][]> {
  const name = writeModel(`${format}-${JSON.stringify(rows).replace(/\W/g, '')}.onnx`, squareDetector(32, rows, format));
  const out = (await detector(name, options).boxes(splitOf(images, count), { imageSize: size })).boxes;
  return Array.from({ length: count }, (_, i) => Array.from(out.subarray(4 * i, 4 * i + 4)));
}

// [25, 25, 220, 220] at 224 px on a 64-px image
const fallback64 = [25, 25, 220, 220].map((v) => (v * 64) / 224);

describe('face-boxes plugin: onnx (detector graphs built by the test)', () => {
  before(async () => {
    registry = await createRegistry();
  });

  it('finds the square where it is, in the image’s pixels (64-px images through a 32-px detector)', async () => {
    const images = squares(64, [{ box: [16, 8, 40, 32] }, { box: [36, 20, 60, 56] }]);
    expect(await boxes([{}], images, 2, 64)).to.deep.equal([
      [16, 8, 40, 32],
      [36, 20, 60, 56],
    ]);
  });

  it('reads the [N, 5] corner layout as well', async () => {
    const images = squares(32, [{ box: [3, 5, 13, 21] }]);
    expect(await boxes([{}], images, 1, 32, {}, 'corners')).to.deep.equal([[3, 5, 13, 21]]);
  });

  it('no face (score below the confidence) → the fallback box scaled to the image', async () => {
    const images = squares(64, [{ box: [16, 8, 40, 32], brightness: 0.3 }, { box: [0, 0, 0, 0] }]);
    const out = await boxes([{}], images, 2, 64);
    for (const b of out)
      expect(
        b.map((v, i) => v - fallback64[i]!).every((d) => Math.abs(d) < 1e-5),
        b.join(' '),
      ).to.equal(true);
  });

  it('two faces that NMS keeps apart → the fallback box', async () => {
    const images = squares(64, [{ box: [16, 8, 40, 32] }]);
    const [b] = await boxes([{}, { dx: 14, score: 0.8 }], images, 1, 64);
    expect(b!.map((v, i) => Math.abs(v - fallback64[i]!) < 1e-5)).to.deep.equal([true, true, true, true]);
  });

  it('overlapping duplicates merged by NMS → exactly one face → the best-scored box', async () => {
    const images = squares(64, [{ box: [16, 8, 40, 32] }]);
    // The weaker duplicate, one input pixel to the right, comes first: IoU 11/13 > 0.5.
    expect(await boxes([{ dx: 1, score: 0.9 }, {}], images, 1, 64)).to.deep.equal([[16, 8, 40, 32]]);
    // A duplicate below the confidence is dropped before NMS.
    expect(await boxes([{}, { dx: 14, score: 0.3 }], images, 1, 64)).to.deep.equal([[16, 8, 40, 32]]);
  });

  it('keeps boxes on disk by image digest when given a cache folder, and reads them back', async () => {
    const cache = path.join(dir, 'cache');
    const images = squares(64, [{ box: [16, 8, 40, 32] }, { box: [36, 20, 60, 56] }]);
    const first = await boxes([{}], images, 2, 64, { cache: 'cache', confidence: 0.45 });
    const files = fs.readdirSync(cache);
    expect(files).to.have.length(1);
    const stored = JSON.parse(fs.readFileSync(path.join(cache, files[0]!), 'utf8'));
    expect(stored.boxes[imageDigest(images, 1, 64)]).to.deep.equal(first[1]);
    // What is stored is what a later run returns: the detector is not asked again.
    stored.boxes[imageDigest(images, 0, 64)] = [1, 2, 3, 4];
    const later = path.join(dir, 'later-run');
    fs.mkdirSync(later);
    fs.writeFileSync(path.join(later, files[0]!), JSON.stringify(stored));
    expect(await boxes([{}], images, 2, 64, { cache: 'later-run', confidence: 0.45 })).to.deep.equal([[1, 2, 3, 4], first[1]]);
    // Another setting is another entry.
    expect(await boxes([{}], images, 2, 64, { cache: 'later-run', confidence: 0.46 })).to.deep.equal(first);
    expect(fs.readdirSync(later)).to.have.length(2);
  });

  it('refuses a missing model file and an output it cannot read, naming the problem', async () => {
    expect(() => detector('missing.onnx')).to.throw(/model file not found: .*missing\.onnx; model: is relative to the recipe's folder/);
    const flat = writeModel(
      'flat.onnx',
      encodeModel({
        nodes: [{ op: 'ReduceMean', inputs: ['images'], outputs: ['output'], attributes: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } }],
        inputs: [{ name: 'images', type: 'float', shape: [1, 3, 32, 32] }],
        outputs: [{ name: 'output', type: 'float', shape: [1, 3] }],
      }),
    );
    let message = '';
    try {
      await detector(flat).boxes(splitOf(new Float32Array(32 * 32 * 3), 1), { imageSize: 32 });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.match(/output has shape \[1, 3\]; expected \[1, N, 6\+\]/);
  });
});
