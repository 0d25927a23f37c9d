import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  affineOf,
  applyDraws,
  colourOp,
  drawOps,
  moveBox,
  opArgument,
  RAND_OPS,
  TIMM_OPS,
  warpAffine,
  type RandOp,
} from '../../../plugins/augment/internal/randaugment.ts';
import type { Augmentation } from '../../../src/contracts/training.ts';
import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import { Rng } from '../../../src/core/rng.ts';

const ctx = { seed: 1, scale: 'smoke', recipeDir: '.' };
const TIMM = { magnitudeMax: 10, increasing: true, translate: 0.45 };

/** A 1-channel image from rows of 8-bit values, as [1, H, W, 1] in [0, 1]. */
function grey(rows: number[][]): tf.Tensor4D {
  return tf.tensor4d(
    rows.flat().map((v) => v / 255),
    [1, rows.length, rows[0]!.length, 1],
  );
}

function bytes(t: tf.Tensor): number[] {
  return Array.from(t.dataSync()).map((v) => Math.round(v * 255 * 1000) / 1000);
}

function op(name: RandOp, x: tf.Tensor4D, arg: number): number[] {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const out = ['Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY'].includes(name)
      ? warpAffine(x, [affineOf(name, arg, h, w)], [0])
      : colourOp(name, x, [arg]);
    return bytes(out);
  });
}

describe('strong augmentation (crop + flip + RandAugment)', function () {
  let registry: PluginRegistry;
  before(async () => {
    await tf.setBackend('cpu');
    registry = await createRegistry();
  });

  describe('timm argument mapping at magnitude 9 of 10, increasing variants', () => {
    it('gives the documented arguments', () => {
      expect(opArgument('Rotate', 9, -1, TIMM)).to.be.closeTo(-27, 1e-9);
      expect(opArgument('ShearX', 9, 1, TIMM)).to.be.closeTo(0.27, 1e-9);
      expect(opArgument('TranslateY', 9, 1, TIMM)).to.be.closeTo(0.405, 1e-9);
      expect(opArgument('Solarize', 9, 1, TIMM)).to.equal(256 - 230);
      expect(opArgument('Posterize', 9, 1, TIMM)).to.equal(1);
      expect(opArgument('Brightness', 9, 1, TIMM)).to.be.closeTo(1.81, 1e-9);
      expect(opArgument('Color', 9, -1, TIMM)).to.be.closeTo(0.19, 1e-9);
      expect(opArgument('Contrast', 0, 1, TIMM)).to.equal(1);
      // Original (not increasing) mappings: posterize keeps 4–8 bits, enhancements 0.1–1.9.
      expect(opArgument('Posterize', 10, 1, { ...TIMM, increasing: false })).to.equal(8);
      expect(opArgument('Sharpness', 5, -1, { ...TIMM, increasing: false })).to.be.closeTo(1, 1e-9);
      expect(opArgument('Solarize', 0, 1, TIMM)).to.equal(256); // nothing solarised at M = 0
      // SolarizeAdd: min(128, int(level / 10 · 110)): 99 at M 9, 110 at 10.
      expect(opArgument('SolarizeAdd', 9, 1, TIMM)).to.equal(99);
      expect(opArgument('SolarizeAdd', 10, -1, TIMM)).to.equal(110);
    });

    it('draws from timm’s increasing list by default (the authors’ rand-m9-mstd0.5-inc1), torchvision’s 14 as an option', () => {
      // timm/data/auto_augment.py, _RAND_INCREASING_TRANSFORMS, with the Increasing and Rel
      // suffixes left to the increasing and translate settings.
      expect(TIMM_OPS).to.deep.equal([
        'AutoContrast',
        'Equalize',
        'Invert',
        'Rotate',
        'Posterize',
        'Solarize',
        'SolarizeAdd',
        'Color',
        'Contrast',
        'Brightness',
        'Sharpness',
        'ShearX',
        'ShearY',
        'TranslateX',
        'TranslateY',
      ]);
      expect(RAND_OPS).to.have.length(14).and.to.include('Identity').and.not.to.include('Invert');
    });
  });

  describe('each operation on a small image', () => {
    const img = [
      [0, 50, 100],
      [150, 200, 250],
      [10, 128, 255],
    ];

    it('Invert: 255 − v; SolarizeAdd: v + add (at most 255) below 128, the rest unchanged', () => {
      expect(op('Invert', grey(img), 0)).to.deep.equal([255, 205, 155, 105, 55, 5, 245, 127, 0]);
      expect(op('SolarizeAdd', grey(img), 99)).to.deep.equal([99, 149, 199, 150, 200, 250, 109, 128, 255]);
      expect(op('SolarizeAdd', grey([[120, 127, 128]]), 110)).to.deep.equal([230, 237, 128]);
    });

    it('Identity leaves the image as it is', () => {
      expect(op('Identity', grey(img), 0)).to.deep.equal(img.flat());
    });

    it('Solarize inverts values at or above the threshold', () => {
      expect(op('Solarize', grey(img), 128)).to.deep.equal([0, 50, 100, 105, 55, 5, 10, 127, 0]);
      expect(op('Solarize', grey(img), 256)).to.deep.equal(img.flat());
    });

    it('Posterize keeps the top bits', () => {
      expect(op('Posterize', grey(img), 2)).to.deep.equal([0, 0, 64, 128, 192, 192, 0, 128, 192]);
      expect(op('Posterize', grey(img), 0)).to.deep.equal(new Array(9).fill(0));
      expect(op('Posterize', grey(img), 8)).to.deep.equal(img.flat());
    });

    it('Brightness scales and clips', () => {
      expect(op('Brightness', grey(img), 1.5)).to.deep.equal([0, 75, 150, 225, 255, 255, 15, 192, 255]);
      expect(op('Brightness', grey(img), 0.5)).to.deep.equal(img.flat().map((v) => v / 2));
    });

    it('Contrast blends with the mean grey level', () => {
      const mean = img.flat().reduce((a, v) => a + v, 0) / 9;
      const got = op('Contrast', grey(img), 0.5);
      img.flat().forEach((v, i) => expect(got[i]).to.be.closeTo(mean + 0.5 * (v - mean), 1e-3));
      op('Contrast', grey(img), 0).forEach((v) => expect(v).to.be.closeTo(mean, 1e-3));
    });

    it('Color blends with the luma (ITU-R 601-2)', () => {
      const x = tf.tensor4d([1, 0, 0, 0, 1, 0], [1, 1, 2, 3]);
      const got = tf.tidy(() => Array.from(colourOp('Color', x, [0]).dataSync()));
      [0.299, 0.299, 0.299, 0.587, 0.587, 0.587].forEach((v, i) => expect(got[i]).to.be.closeTo(v, 1e-6));
      const twice = tf.tidy(() => Array.from(colourOp('Color', x, [2]).dataSync()));
      // 2·x − luma, clipped: red pixel → (1.701, −0.299, −0.299) → (1, 0, 0).
      [1, 0, 0, 0, 1, 0].forEach((v, i) => expect(twice[i]).to.be.closeTo(v, 1e-6));
      x.dispose();
    });

    it('AutoContrast stretches each channel to the full range; a flat channel is left alone', () => {
      const x = tf.tensor4d([0.2, 0.5, 0.4, 0.5, 0.6, 0.5], [1, 1, 3, 2]);
      const got = tf.tidy(() => Array.from(colourOp('AutoContrast', x, [0]).dataSync()));
      [0, 0.5, 0.5, 0.5, 1, 0.5].forEach((v, i) => expect(got[i]).to.be.closeTo(v, 1e-6));
      x.dispose();
    });

    it('Equalize spreads the cumulative histogram over 0–255 as PIL does', () => {
      // 20×20 pixels: 200 at 10, 100 at 20, 100 at 30. step = (400 − 100) // 255 = 1, so
      // lut = cumulative counts before the bin: 10 → 0, 20 → 200, 30 → 300 (clipped to 255).
      const values = [...new Array(200).fill(10), ...new Array(100).fill(20), ...new Array(100).fill(30)];
      const rows = Array.from({ length: 20 }, (_, r) => values.slice(r * 20, r * 20 + 20));
      const got = op('Equalize', grey(rows), 0);
      expect(got.slice(0, 200).every((v) => v === 0)).to.equal(true);
      expect(got.slice(200, 300).every((v) => v === 200)).to.equal(true);
      expect(got.slice(300).every((v) => v === 255)).to.equal(true);
      // Too few distinct levels for a step: unchanged.
      expect(op('Equalize', grey(img), 0)).to.deep.equal(img.flat());
    });

    it('Sharpness blends with the 3×3 smoothed image, the border kept', () => {
      const blurred = (0 + 50 + 100 + 150 + 250 + 10 + 128 + 255 + 5 * 200) / 13;
      const got = op('Sharpness', grey(img), 0);
      expect(got[4]).to.be.closeTo(blurred, 1e-3);
      [0, 1, 2, 3, 5, 6, 7, 8].forEach((i) => expect(got[i]).to.be.closeTo(img.flat()[i]!, 1e-3));
      expect(op('Sharpness', grey(img), 1)).to.deep.equal(img.flat());
    });

    it('Rotate by 90° turns the image counter-clockwise', () => {
      const got = op('Rotate', grey(img), 90);
      const expected = [100, 250, 255, 50, 200, 128, 0, 150, 10];
      got.forEach((v, i) => expect(v).to.be.closeTo(expected[i]!, 1e-3));
    });

    it('ShearX, ShearY, TranslateX, TranslateY sample the input at the moved point, filling outside', () => {
      // ShearX 1: out(x, y) = in(x + y, y).
      expect(op('ShearX', grey(img), 1)).to.deep.equal([0, 50, 100, 200, 250, 0, 255, 0, 0]);
      // ShearY 1: out(x, y) = in(x, y + x).
      expect(op('ShearY', grey(img), 1)).to.deep.equal([0, 200, 255, 150, 128, 0, 10, 0, 0]);
      // One third of 3 px = one pixel.
      expect(op('TranslateX', grey(img), 1 / 3)).to.deep.equal([50, 100, 0, 200, 250, 0, 128, 255, 0]);
      expect(op('TranslateY', grey(img), -1 / 3)).to.deep.equal([0, 0, 0, 0, 50, 100, 150, 200, 250]);
    });
  });

  describe('boxes', () => {
    it('move with the geometric operations', () => {
      expect(moveBox([2, 0, 4, 2], affineOf('TranslateX', 1 / 6, 6, 6), 6, 6)).to.deep.equal([1, 0, 3, 2]);
      // A quarter turn about the centre of a 6×6 image maps [0, 0, 2, 2] (top left) to the bottom left.
      const r = moveBox([0, 0, 2, 2], affineOf('Rotate', 90, 6, 6), 6, 6);
      [0, 4, 2, 6].forEach((v, i) => expect(r[i]).to.be.closeTo(v, 1e-9));
      // Moved out of the frame: clipped, never outside.
      expect(moveBox([0, 0, 2, 2], affineOf('TranslateX', 0.5, 6, 6), 6, 6)).to.deep.equal([0, 0, 0, 2]);
    });
  });

  describe('grouped application', () => {
    it('gives each image its own operation and puts them back in order', () => {
      const x = tf.randomUniform([3, 4, 4, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const draws = [
        [
          { op: 'Solarize' as const, applied: true, arg: 100 },
          { op: 'Rotate' as const, applied: false, arg: 30 },
          { op: 'TranslateX' as const, applied: true, arg: 0.25 },
        ],
      ];
      const boxes = Float32Array.from([0, 0, 4, 4, 1, 1, 3, 3, 1, 1, 3, 3]);
      const out = applyDraws(x, boxes, draws, [0.5, 0.5, 0.5]);
      const parts = tf.tidy(() => tf.split(out.images, 3).map((t) => Array.from(t.dataSync())));
      const alone = tf.tidy(() => {
        const [a, b, c] = tf.split(x, 3) as tf.Tensor4D[];
        return [
          Array.from(colourOp('Solarize', a!, [100]).dataSync()),
          Array.from(b!.dataSync()),
          Array.from(warpAffine(c!, [affineOf('TranslateX', 0.25, 4, 4)], [0.5, 0.5, 0.5]).dataSync()),
        ];
      });
      parts.forEach((p, i) => p.forEach((v, j) => expect(v).to.be.closeTo(alone[i]![j]!, 1e-6)));
      expect(Array.from(out.boxes)).to.deep.equal([0, 0, 4, 4, 1, 1, 3, 3, 0, 1, 2, 3]);
      tf.dispose([x, out.images]);
    });
  });

  describe('the plugin', () => {
    const apply = (aug: Augmentation, seed: number) => {
      const images = tf.randomUniform([6, 16, 16, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
      const boxes = tf.tensor2d([
        [2, 2, 14, 14],
        [0, 0, 16, 16],
        [4, 3, 12, 15],
        [1, 1, 8, 8],
        [8, 8, 16, 16],
        [3, 5, 13, 11],
      ]);
      const out = aug.apply(images, boxes, new Rng(seed));
      const result = { images: Array.from(out.images.dataSync()), boxes: Array.from(out.boxes.dataSync()), shape: out.images.shape, boxShape: out.boxes.shape };
      tf.dispose([images, boxes, out.images, out.boxes]);
      return result;
    };

    it('keeps shapes and range, keeps boxes inside the image, is deterministic from the generator and frees its tensors', () => {
      const aug = registry.create('augment', { use: 'strong', ops: 3, prob: 1, magnitude: 12, magnitude_max: 10 }, ctx);
      const before = tf.memory().numTensors;
      const a = apply(aug, 1);
      expect(tf.memory().numTensors).to.equal(before);
      expect(a.shape).to.deep.equal([6, 16, 16, 3]);
      expect(a.boxShape).to.deep.equal([6, 4]);
      expect(Math.min(...a.images)).to.be.at.least(0);
      expect(Math.max(...a.images)).to.be.at.most(1);
      for (let i = 0; i < 6; i++) {
        const [x1, y1, x2, y2] = a.boxes.slice(i * 4, i * 4 + 4) as [number, number, number, number];
        for (const v of [x1, y1, x2, y2]) expect(v).to.be.within(0, 16);
        expect(x2).to.be.at.least(x1);
        expect(y2).to.be.at.least(y1);
      }
      expect(apply(aug, 1)).to.deep.equal(a);
      expect(apply(aug, 2).images).to.not.deep.equal(a.images);
    });

    it('with no operations it is the weak augmentation', () => {
      const strong = registry.create('augment', { use: 'strong', ops: 0 }, ctx);
      const weak = registry.create('augment', { use: 'weak' }, ctx);
      expect(apply(strong, 4)).to.deep.equal(apply(weak, 4));
    });

    it('a crop of the whole image is the image: without it the weak augmentation only flips, to the bit', () => {
      const whole = registry.create('augment', { use: 'weak', scale: [1, 1], ratio: [1, 1], flip: 0 }, ctx);
      const images = tf.randomUniform([6, 16, 16, 3], 0, 1, 'float32', 11);
      expect(apply(whole, 5).images).to.deep.equal(Array.from(images.dataSync()));
      // What the skipped resampling would give: every pixel onto itself.
      const resampled = tf.image.cropAndResize(images as tf.Tensor4D, tf.tensor2d([[0, 0, 1, 1]]), tf.tensor1d([0], 'int32'), [16, 16], 'bilinear');
      expect(Array.from(resampled.dataSync())).to.deep.equal(Array.from(images.slice([0], [1]).dataSync()));
      // Flipped, each row is reversed.
      const flipped = apply(registry.create('augment', { use: 'weak', scale: [1, 1], ratio: [1, 1], flip: 1 }, ctx), 5).images;
      const x = images.arraySync() as number[][][][];
      expect(flipped).to.deep.equal(x.flatMap((im) => im.flatMap((row) => [...row].reverse().flat())));
      tf.dispose([images, resampled]);
    });

    it('draws every operation of its list', () => {
      const settings = { ops: 2, magnitude: 9, magnitudeStd: 0.5, magnitudeMax: 10, prob: 0.5, increasing: true, translate: 0.45, fill: [0] };
      const tv = new Set(
        drawOps(200, { ...settings, opSet: 'torchvision' }, new Rng(3))
          .flat()
          .map((d) => d.op),
      );
      expect([...tv].sort()).to.deep.equal([...RAND_OPS].sort());
      const draws = drawOps(200, settings, new Rng(3));
      const seen = new Set(draws.flat().map((d) => d.op));
      expect([...seen].sort()).to.deep.equal([...TIMM_OPS].sort());
      const applied = draws.flat().filter((d) => d.applied).length / 400;
      expect(applied).to.be.within(0.4, 0.6);
    });
  });
});
