import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import sharp from 'sharp';
import { decodeSquare } from '../../src/data/decode.ts';
import { facePlacement, loadModelBundle, MODEL_FORMAT_VERSION } from '../../src/model/bundle.ts';
import { AUTHORS_PLACEMENT, cropPixels, faceCrop } from '../../src/predict/crop.ts';
import { readPhoto } from '../../src/predict/predict.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const demo = path.join(path.dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');
const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) => path.join(demo, `sample${i}.jpg`));

function ssfer(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface PredictJson {
  model: { dir: string; image_size: number; classes: string[] };
  detector: string;
  placement: { box: number[]; from: string } | null;
  images: {
    file: string;
    width: number;
    height: number;
    output: string;
    faces: {
      box: number[];
      score: number | null;
      crop: { left: number; top: number; width: number; height: number };
      class: string;
      probability: number;
      probabilities: Record<string, number>;
    }[];
  }[];
}

/** The model's logits for size × size RGB bytes read as training reads images ([0, 1]). */
async function logitsOf(modelDir: string, bytes: Uint8Array, size: number): Promise<number[]> {
  const { model } = await loadModelBundle(modelDir);
  try {
    return tf.tidy(() =>
      Array.from(
        model
          .logits(
            tf.tensor4d(
              Float32Array.from(bytes, (b) => b / 255),
              [1, size, size, 3],
            ),
            { training: false },
          )
          .dataSync(),
      ),
    );
  } finally {
    model.dispose();
  }
}

function softmax(logits: number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('ssfer predict', function () {
  this.timeout(600_000);

  describe('the crop', () => {
    it('places a face box where the training faces sat (hand-computed)', () => {
      // Face 100 wide and 200 high; in training the box spanned x 0.25–0.75 and y 0.1–0.9 of the side:
      // the crop is 100 / 0.5 = 200 wide, 200 / 0.8 = 250 high, from x 100 − 0.25·200 = 50, y 100 − 0.1·250 = 75.
      expect(faceCrop([100, 100, 200, 300], [0.25, 0.1, 0.75, 0.9])).to.deep.equal({ left: 50, top: 75, width: 200, height: 250 });
      // The authors' box at 224 px: a face box of 195 px at 25 px lands on a 224-px crop from 0.
      expect(faceCrop([25, 25, 220, 220], AUTHORS_PLACEMENT)).to.deep.equal({ left: 0, top: 0, width: 224, height: 224 });
    });

    it('takes the median of each corner of the training boxes, as shares of the side (hand-computed)', () => {
      // Three 100-px images: x1 = 10, 20, 40 → median 20; y1 = 5, 5, 30 → 5; x2 = 90, 70, 80 → 80; y2 = 95, 99, 90 → 95.
      const boxes = Float32Array.from([10, 5, 90, 95, 20, 5, 70, 99, 40, 30, 80, 90]);
      expect(facePlacement(boxes, 100, 'note')).to.deep.equal({ median: [0.2, 0.05, 0.8, 0.95], images: 3, boxes: 'note' });
      // With an even count, the mean of the middle two.
      expect(facePlacement(Float32Array.from([0, 0, 50, 50, 10, 20, 70, 90]), 100, 'n')!.median).to.deep.equal([0.05, 0.1, 0.6, 0.7]);
    });

    it('mirrors the photo where the crop reaches past its edge, and keeps the pixels inside', async () => {
      // A 4 × 8 photo whose red is 10·(x + 1) + y; a crop from x = −2, 8 × 8, read at 8 × 8 (no resampling):
      // each row is mirrored at both edges, the edge pixel repeated (20, 10 | 10, 20, 30, 40 | 40, 30).
      const pixels = new Uint8Array(4 * 8 * 3);
      for (let y = 0; y < 8; y++) for (let x = 0; x < 4; x++) pixels[(y * 4 + x) * 3] = 10 * (x + 1) + y;
      const reds = Array.from(await cropPixels({ width: 4, height: 8, pixels }, { left: -2, top: 0, width: 8, height: 8 }, 8))
        .filter((_, i) => i % 3 === 0)
        .map((v) => Math.round(v * 255));
      expect(reds.slice(0, 8)).to.deep.equal([20, 10, 10, 20, 30, 40, 40, 30]);
      expect(reds.slice(56, 64)).to.deep.equal([27, 17, 17, 27, 37, 47, 47, 37]);
    });
  });

  describe('a model trained by a tiny recipe, on the face detector package’s demo photos', () => {
    /** The cell's folder (of one seed: it stands for its seed's) and its seed's. */
    let cell: string;
    let seed: string;
    let out: string;
    let json: PredictJson;

    before(() => {
      const results = tempDir();
      const r = ssfer(['run', path.join(fixtures, 'recipes', 'keep-model.yaml'), '--backend', 'cpu', '--out', results]);
      expect(r.status, r.stderr).to.equal(0);
      const base = path.join(results, 'keep-model');
      cell = path.join(base, fs.readdirSync(base).sort().pop()!, 'cells', 'default');
      seed = path.join(cell, 'seed-0');
      out = path.join(tempDir(), 'drawn');
      const p = ssfer(['predict', cell, ...SAMPLES, '--out', out, '--json']);
      expect(p.status, p.stderr).to.equal(0);
      json = JSON.parse(p.stdout) as PredictJson;
    });

    it('records in the model where the training faces sat, and crops photos by it', () => {
      const manifest = JSON.parse(fs.readFileSync(path.join(seed, 'model', 'model.json'), 'utf8')) as {
        preprocessing: { face_box: { median: number[]; images: number; boxes: string } };
      };
      const placed = manifest.preprocessing.face_box;
      expect(placed.images).to.equal(56);
      expect(placed.boxes).to.include('annotated');
      // The synthetic faces are drawn in the middle of their picture, taller than wide.
      const [x1, y1, x2, y2] = placed.median as [number, number, number, number];
      expect(x1).to.be.within(0.05, 0.4);
      expect(x2).to.be.within(0.6, 0.95);
      expect(y2 - y1).to.be.greaterThan(x2 - x1);
      expect(json.placement!.box).to.deep.equal(placed.median);
      // The cell's folder of one seed stood for its seed's model.
      expect(json.model.dir).to.equal(path.join(seed, 'model'));
    });

    it('finds several faces in each demo photo, with boxes inside the photo', () => {
      expect(json.images.map((i) => i.file)).to.deep.equal(SAMPLES);
      expect(json.detector).to.equal('face-api ssd-mobilenet, min confidence 0.5');
      for (const image of json.images) {
        expect(image.width).to.equal(1920);
        expect(image.faces.length, image.file).to.be.within(2, 8);
        for (const f of image.faces) {
          expect(f.box[0]).to.be.at.least(0);
          expect(f.box[2]).to.be.at.most(image.width);
          expect(f.box[3]).to.be.at.most(image.height);
          // A face in a group photo: a few per cent of the photo's width.
          expect((f.box[2]! - f.box[0]!) / image.width).to.be.within(0.03, 0.3);
          expect(f.score).to.be.within(0.5, 1);
        }
        const scores = image.faces.map((f) => f.score!);
        expect(scores).to.deep.equal([...scores].sort((a, b) => b - a));
      }
    });

    it('gives each face the class of the highest probability, the probabilities a softmax', () => {
      for (const f of json.images.flatMap((i) => i.faces)) {
        const p = Object.values(f.probabilities);
        expect(p.reduce((a, b) => a + b, 0)).to.be.closeTo(1, 1e-6);
        expect(f.probability).to.equal(Math.max(...p));
        expect(f.class).to.equal(json.model.classes[p.indexOf(f.probability)]);
      }
    });

    it('classifies a face crop exactly as training reads that crop from an image file', async () => {
      const image = json.images[0]!;
      const face = image.faces[0]!;
      const size = json.model.image_size;
      // The crop cut out of the photo into a file of its own, then read by the training loader.
      const photo = await readPhoto(image.file);
      const c = face.crop;
      expect(c.left).to.be.at.least(0);
      expect(c.top).to.be.at.least(0);
      const file = path.join(tempDir(), 'crop.png');
      await sharp(photo.pixels, { raw: { width: photo.width, height: photo.height, channels: 3 } })
        .extract(c)
        .png()
        .toFile(file);
      const bytes = new Uint8Array(size * size * 3);
      await decodeSquare({ file }, size, bytes);
      const p = softmax(await logitsOf(path.join(seed, 'model'), bytes, size));
      json.model.classes.forEach((name, k) => expect(face.probabilities[name]!, name).to.be.closeTo(p[k]!, 1e-5));
    });

    it('writes each photo with its faces’ boxes drawn', async () => {
      expect(fs.readdirSync(out).sort()).to.deep.equal(SAMPLES.map((s) => `${path.basename(s, '.jpg')}.predicted.jpg`).sort());
      const image = json.images[0]!;
      expect(image.output).to.equal(path.join(out, 'sample1.predicted.jpg'));
      const drawn = sharp(image.output);
      expect(await drawn.metadata()).to.include({ width: image.width, height: image.height, format: 'jpeg' });
      const { data } = await drawn.raw().toBuffer({ resolveWithObject: true });
      // The first face's box is green (#22c55e) along its left edge, whatever the photo has there.
      const [x1, y1, , y2] = image.faces[0]!.box.map(Math.round) as [number, number, number, number];
      const at = (x: number, y: number) => Array.from(data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));
      const [r, g, b] = at(x1, Math.round((y1 + y2) / 2));
      expect(g).to.be.greaterThan(150);
      expect(r).to.be.below(90);
      expect(b).to.be.below(140);
    });

    it('prints per face its box, class and probabilities', () => {
      // The seed's folder, as the cell's folder stands for it.
      const r = ssfer(['predict', seed, SAMPLES[0]!, '--out', tempDir()]);
      expect(r.status, r.stderr).to.equal(0);
      const first = json.images[0]!.faces[0]!;
      expect(r.stdout).to.include(`sample1.jpg (1920 × 1280): ${json.images[0]!.faces.length} faces`);
      expect(r.stdout).to.include(
        `1. [${first.box.map(Math.round).join(', ')}] score ${first.score!.toFixed(2)}  ${first.class} ${(100 * first.probability).toFixed(1)} %`,
      );
      for (const name of json.model.classes) expect(r.stdout).to.include(`${name} `);
      expect(r.stdout).to.match(/each cropped so that its box sits at \[0\.\d\d, 0\.\d\d, 0\.\d\d, 0\.\d\d\] of the crop/);
    });

    it('--whole-image classifies the whole picture as training reads an image file', async () => {
      const blank = path.join(tempDir(), 'wall.png');
      await sharp({ create: { width: 60, height: 40, channels: 3, background: '#8a9' } })
        .png()
        .toFile(blank);
      const r = ssfer(['predict', cell, blank, '--whole-image', '--json', '--out', tempDir()]);
      expect(r.status, r.stderr).to.equal(0);
      const p = JSON.parse(r.stdout) as PredictJson;
      expect(p.placement).to.equal(null);
      const face = p.images[0]!.faces[0]!;
      expect(face.box).to.deep.equal([0, 0, 60, 40]);
      expect(face.score).to.equal(null);
      const size = p.model.image_size;
      const bytes = new Uint8Array(size * size * 3);
      await decodeSquare({ file: blank }, size, bytes);
      const expected = softmax(await logitsOf(path.join(seed, 'model'), bytes, size));
      p.model.classes.forEach((name, k) => expect(face.probabilities[name]!).to.be.closeTo(expected[k]!, 1e-5));
    });

    it('refuses bad input with one message and exit status 2, and writes nothing', async () => {
      const free = tempDir();
      const drawn = path.join(free, 'drawn');
      const notImage = path.join(free, 'notes.jpg');
      fs.writeFileSync(notImage, 'not a picture\n');
      const wall = path.join(free, 'wall.png');
      await sharp({ create: { width: 300, height: 200, channels: 3, background: '#8a9' } })
        .png()
        .toFile(wall);
      const refused = (args: string[], pattern: RegExp, lines = 1) => {
        const r = ssfer(['predict', ...args, '--out', drawn]);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
        expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(lines);
        expect(r.stderr).to.match(/^ssfer predict: /);
        expect(r.stderr).to.match(pattern);
        expect(r.stdout).to.equal('');
      };
      refused([cell, notImage], /notes\.jpg: not an image that can be read .*; name a JPEG, PNG, WebP, GIF, TIFF or AVIF file; nothing was written$/m);
      refused([cell, wall], /wall\.png: no face found \(face-api ssd-mobilenet, min confidence 0\.5\); --whole-image classifies the whole picture/);
      refused(
        [cell, SAMPLES[0]!, wall, notImage],
        /2 of 3 images cannot be used; nothing was written:\n {2}.*wall\.png: no face found.*\n {2}.*notes\.jpg: not an image/,
        3,
      );
      refused([cell, path.join(free, 'missing.jpg')], /missing\.jpg: no such file/);
      refused([cell], /name a cell folder .* then one or more images/);
      refused([free, SAMPLES[0]!], /no saved model here/);
      refused([cell, SAMPLES[0]!, '--detector', 'annotations'], /the annotations face boxes cannot find faces in a photo; detectors that can: .*face-api/);

      const other = path.join(free, 'other-version');
      fs.cpSync(path.join(seed, 'model'), other, { recursive: true });
      const manifest = JSON.parse(fs.readFileSync(path.join(other, 'model.json'), 'utf8')) as Record<string, unknown>;
      const version = MODEL_FORMAT_VERSION + 1;
      fs.writeFileSync(path.join(other, 'model.json'), JSON.stringify({ ...manifest, format_version: version, ssfer_version: '9.0.0' }));
      refused(
        [other, SAMPLES[0]!],
        new RegExp(`model bundle format version ${version} \\(written by ssfer 9\\.0\\.0\\); this ssfer .* reads version ${MODEL_FORMAT_VERSION} only`),
      );

      // A cell of several seeds has a model per seed: the seed's folder is named.
      const twoSeeds = path.join(free, 'two-seeds');
      fs.cpSync(cell, twoSeeds, { recursive: true });
      fs.cpSync(path.join(twoSeeds, 'seed-0'), path.join(twoSeeds, 'seed-1'), { recursive: true });
      refused([twoSeeds, SAMPLES[0]!], /two-seeds: a cell of 2 seeds, each with its own model; name one seed's folder: .*seed-0, .*seed-1/);
      expect(fs.existsSync(drawn)).to.equal(false);
    });
  });
});
