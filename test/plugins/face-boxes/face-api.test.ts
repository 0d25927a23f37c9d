import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { FaceBoxSource } from '../../../src/contracts/training.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { backendAvailable } from '../../../src/engine/backend.ts';
import { imageDigest } from '../../../plugins/face-boxes/internal/cache.ts';
import { boxIou, type Box } from '../../../plugins/face-boxes/internal/detections.ts';
import { tempDir } from '../../helpers.ts';
import { DEMO_PHOTOS, FACE_API_DIR, demoFaces, detectDirectly, faceApiModule, faceCrop, squareImages, splitOf, type PhotoFace } from './demo-faces.ts';

const require = createRequire(import.meta.url);
let registry: PluginRegistry;

function faceApi(options: Record<string, unknown> = {}, recipeDir = '.'): FaceBoxSource {
  return registry.create('face-boxes', { use: 'face-api', ...options }, { seed: 1, scale: 'smoke', recipeDir });
}

const boxOf = (boxes: Float32Array, i: number): Box => Array.from(boxes.subarray(4 * i, 4 * i + 4)) as unknown as Box;
/** A face found in a photo at full resolution, in the pixels of the photo squeezed to size × size. */
const squeezedBox = (f: PhotoFace, size: number): Box => [
  (f.box[0] * size) / f.width,
  (f.box[1] * size) / f.height,
  (f.box[2] * size) / f.width,
  (f.box[3] * size) / f.height,
];

describe('face-boxes plugin: face-api (the real detector on the photos its package ships)', function () {
  this.timeout(300_000);
  const SIZE = 384;
  let photos: Float32Array;
  let faces: PhotoFace[];
  let crops100: { images: Float32Array; count: number };

  before(async () => {
    registry = await createRegistry();
    faces = await demoFaces();
    photos = await squareImages(DEMO_PHOTOS, SIZE);
  });

  it('finds several faces in each photo, keeps the most confident one, and its box lies inside the image', async () => {
    const found = await faceApi().boxes(splitOf(photos, SIZE), { imageSize: SIZE });
    expect(found.note).to.equal('face boxes: face-api ssd-mobilenet, 0 of 6 images without a detected face used the central fallback box');
    const n = SIZE * SIZE * 3;
    const margin = Math.round(0.5 * SIZE); // pad: 0.5
    for (let i = 0; i < DEMO_PHOTOS.length; i++) {
      const box = boxOf(found.boxes, i);
      expect(box[0] >= 0 && box[1] >= 0 && box[2] <= SIZE && box[3] <= SIZE && box[2] > box[0] && box[3] > box[1], `photo ${i + 1}: ${box.join(' ')}`).to.equal(
        true,
      );
      // The library itself, on the same grey-framed image: several faces, and ours is its top-scored one.
      const framed = tf.tidy(() =>
        tf.pad(
          tf.mul(tf.tensor3d(photos.subarray(i * n, (i + 1) * n), [SIZE, SIZE, 3]), 255),
          [
            [margin, margin],
            [margin, margin],
            [0, 0],
          ],
          127.5,
        ),
      ) as tf.Tensor3D;
      const direct = await detectDirectly(framed).finally(() => framed.dispose());
      expect(direct.length, `photo ${i + 1}`).to.be.at.least(2);
      const top = direct.reduce((a, b) => (b.score > a.score ? b : a));
      const expected = [top.box.x, top.box.y, top.box.x + top.box.width, top.box.y + top.box.height].map((v) => Math.min(SIZE, Math.max(0, v - margin)));
      box.forEach((v, k) => expect(v, `photo ${i + 1} corner ${k}`).to.be.closeTo(expected[k]!, 1e-3));
      // …and a face the detector also finds in the photo at its full resolution.
      const best = Math.max(...faces.filter((f) => f.photo === DEMO_PHOTOS[i]).map((f) => boxIou(box, squeezedBox(f, SIZE))));
      expect(best, `photo ${i + 1}`).to.be.above(0.6);
    }
  });

  it('on aligned face crops made from the photos (100×100, as RAF-DB’s): one face, near the centre, covering most of the crop', async () => {
    const clear = faces.filter((f) => f.score >= 0.9);
    expect(clear.length).to.be.at.least(12);
    const crops = await squareImages(await Promise.all(clear.map((f) => faceCrop(f, { margin: 0.1, size: 100 }))), 100);
    // several_faces: fallback counts every crop without exactly one face
    const found = await faceApi({ several_faces: 'fallback' }).boxes(splitOf(crops, 100), { imageSize: 100 });
    expect(found.note).to.equal(
      `face boxes: face-api ssd-mobilenet, 0 of ${clear.length} images without exactly one detected face used the central fallback box`,
    );
    let covered = 0;
    for (let i = 0; i < clear.length; i++) {
      const [x1, y1, x2, y2] = boxOf(found.boxes, i);
      expect(Math.hypot((x1 + x2) / 2 - 50, (y1 + y2) / 2 - 50), `crop ${i}: ${[x1, y1, x2, y2].join(' ')}`).to.be.below(10);
      expect(Math.min(x2 - x1, y2 - y1), `crop ${i}`).to.be.above(45);
      covered += ((x2 - x1) * (y2 - y1)) / 100 ** 2;
    }
    // (the detector's box runs from the brows to the chin, inside the crop's margin)
    expect(covered / clear.length).to.be.above(0.4);
    crops100 = { images: crops, count: clear.length };
  });

  it('an image without a face gets the central fallback box and is counted', async () => {
    // A patch of photo 1 away from every face it holds and a flat grey image; then a face.
    const photo = DEMO_PHOTOS[0]!;
    const inPhoto = faces.filter((f) => f.photo === photo);
    const patch: PhotoFace = { ...inPhoto[0]!, box: [0, 1000, 260, 1260] };
    expect(inPhoto.every((f) => boxIou(f.box, patch.box) === 0)).to.equal(true);
    const background = await squareImages([await faceCrop(patch, { margin: 0, size: 64 })], 64);
    const face = await squareImages([await faceCrop(inPhoto[0]!, { margin: 0.1, size: 64 })], 64);
    const all = new Float32Array(3 * 64 * 64 * 3).fill(0.5); // the second image: flat grey
    all.set(background, 0);
    all.set(face, 2 * 64 * 64 * 3);
    const found = await faceApi().boxes(splitOf(all, 64), { imageSize: 64 });
    expect(found.note).to.equal('face boxes: face-api ssd-mobilenet, 2 of 3 images without a detected face used the central fallback box');
    const fallback = [25, 25, 220, 220].map((v) => (v * 64) / 224);
    for (const i of [0, 1]) boxOf(found.boxes, i).forEach((v, k) => expect(v).to.be.closeTo(fallback[k]!, 1e-4));
    expect(boxOf(found.boxes, 2)).to.not.deep.equal(boxOf(found.boxes, 0));
  });

  it('runs on the project’s own @tensorflow/tfjs: one copy of tfjs is loaded', () => {
    // face-api declares no dependencies, so its require('@tensorflow/tfjs') finds the project's.
    const pkg = JSON.parse(fs.readFileSync(path.join(FACE_API_DIR, 'package.json'), 'utf8')) as { dependencies?: object };
    expect(pkg.dependencies).to.equal(undefined);
    expect(require.resolve('@tensorflow/tfjs', { paths: [FACE_API_DIR] })).to.equal(require.resolve('@tensorflow/tfjs'));
    const api = faceApiModule();
    const loaded = Object.keys(require.cache);
    for (const main of [
      /[\\/]@tensorflow[\\/]tfjs[\\/]dist[\\/]tf\.node\.js$/,
      /[\\/]@tensorflow[\\/]tfjs-core[\\/]dist[\\/]tf-core\.node\.js$/,
      /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]dist[\\/]tf-backend-wasm\.node\.js$/,
    ]) {
      expect(
        loaded.filter((f) => main.test(f)),
        String(main),
      ).to.have.length(1);
    }
    expect(loaded.filter((f) => /face-api\.node-wasm\.js$/.test(f))).to.have.length(1);
    // The tensors it makes are ours.
    expect(api.tf.Tensor).to.equal(tf.Tensor);
  });

  it('detects on wasm and leaves the backend the run chose active, with memory flat', async () => {
    const flipped = await squareImages(await Promise.all(faces.slice(0, 3).map((f) => faceCrop(f, { margin: 0.1, size: 64, flip: true }))), 64);
    const chosen = (await backendAvailable('native')) === null ? 'native' : 'cpu';
    const before = tf.getBackend();
    try {
      await tf.setBackend(chosen);
      const tensors = tf.memory().numTensors;
      // Every backend switch, as tfjs's engine sees it.
      const engine = tf.engine();
      const setBackend = engine.setBackend;
      const switches: string[] = [];
      engine.setBackend = (name: string) => (switches.push(name), setBackend.call(engine, name));
      let found;
      try {
        found = await faceApi().boxes(splitOf(flipped, 64), { imageSize: 64 });
      } finally {
        engine.setBackend = setBackend;
      }
      expect(found.note).to.match(/^face boxes: face-api ssd-mobilenet, \d of 3 images/);
      expect(switches).to.deep.equal(['wasm', chosen]);
      expect(tf.getBackend()).to.equal(chosen);
      // the detector's weights are disposed with the session
      expect(tf.memory().numTensors).to.equal(tensors);
    } finally {
      await tf.setBackend(before);
    }
  });

  it('keeps detections on disk by image content; a later run reads them instead of detecting', async () => {
    const run = tempDir('ssfer-face-api-');
    const images = await squareImages(DEMO_PHOTOS.slice(3, 5), 96);
    const first = await faceApi().boxes(splitOf(images, 96), { imageSize: 96, cacheDir: run });
    const dir = path.join(run, 'face-boxes');
    const [file] = fs.readdirSync(dir);
    const stored = JSON.parse(fs.readFileSync(path.join(dir, file!), 'utf8')) as { boxes: Record<string, number[] | null> };
    expect(stored.boxes[imageDigest(images, 1, 96)]).to.deep.equal(boxOf(first.boxes, 1));
    // A later run in another folder, whose file says image 0 had no face: it is not detected again.
    stored.boxes[imageDigest(images, 0, 96)] = null;
    const later = tempDir('ssfer-face-api-later-');
    fs.mkdirSync(path.join(later, 'face-boxes'));
    fs.writeFileSync(path.join(later, 'face-boxes', file!), JSON.stringify(stored));
    const again = await faceApi().boxes(splitOf(images, 96), { imageSize: 96, cacheDir: later });
    expect(again.note).to.equal('face boxes: face-api ssd-mobilenet, 1 of 2 images without a detected face used the central fallback box');
    expect(boxOf(again.boxes, 1)).to.deep.equal(boxOf(first.boxes, 1));
    // The plugin's own cache option (relative to the recipe) takes precedence over the run's folder.
    const own = tempDir('ssfer-face-api-own-');
    await faceApi({ cache: 'boxes' }, own).boxes(splitOf(images, 96), { imageSize: 96, cacheDir: later });
    expect(fs.readdirSync(path.join(own, 'boxes'))).to.deep.equal([file]);
  });

  it('the tiny face detector at a chosen input size finds the same faces in the crops; input_size is refused for SSD MobileNet', async () => {
    const ssd = await faceApi({ several_faces: 'fallback' }).boxes(splitOf(crops100.images, 100), { imageSize: 100 });
    const found = await faceApi({ model: 'tiny', input_size: 320 }).boxes(splitOf(crops100.images, 100), { imageSize: 100 });
    const fellBack = Number(/, (\d+) of (\d+) images/.exec(found.note)![1]);
    expect(found.note).to.match(
      new RegExp(`^face boxes: face-api tiny \\(320 px\\), \\d+ of ${crops100.count} images without a detected face used the central fallback box$`),
    );
    let agree = 0;
    for (let i = 0; i < crops100.count; i++) if (boxIou(boxOf(found.boxes, i), boxOf(ssd.boxes, i)) > 0.5) agree++;
    expect(agree).to.be.at.least(crops100.count - fellBack);
    expect(agree / crops100.count).to.be.at.least(0.8);
    expect(() => faceApi({ input_size: 320 })).to.throw(/input_size applies to model: tiny only/);
  });
});
