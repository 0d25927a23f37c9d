import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import sharp from 'sharp';
import type { FerData, Split } from '../../../src/contracts/dataset.ts';
import type { PluginContext } from '../../../src/core/plugin.ts';
import plugin, { syntheticStandIn, type SyntheticFacesOptions } from '../../../plugins/dataset/synthetic-faces.ts';
import {
  EXPRESSIONS_8,
  Rng,
  deriveSeed,
  drawExpressionSheet,
  fromRafdbLabel,
  generateFacePool,
  generateFerSet,
  generateGenericPool,
  renderMontage,
  toRafdbLabel,
  writeMontage,
} from '../../../plugins/dataset/synthetic/index.ts';
import { writeDatasetLayout } from '../../../src/data/layout.ts';

function ctx(seed: number): PluginContext {
  return {
    seed,
    scale: 'smoke',
    recipeDir: '.',
    resolve() {
      throw new Error('no nested slots here');
    },
  };
}

function counts(labels: Int32Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Softmax regression on standardised raw pixels, plain SGD; returns test accuracy. */
function softmaxProbe(train: Split, test: Split, dim: number, k: number, epochs: number): { train: number; test: number } {
  const mean = new Float64Array(dim),
    sd = new Float64Array(dim);
  for (let i = 0; i < train.size; i++) for (let j = 0; j < dim; j++) mean[j]! += train.images[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= train.size;
  for (let i = 0; i < train.size; i++) for (let j = 0; j < dim; j++) sd[j]! += (train.images[i * dim + j]! - mean[j]!) ** 2;
  for (let j = 0; j < dim; j++) sd[j] = Math.sqrt(sd[j]! / train.size + 1e-4);
  const norm = (s: Split) => {
    const x = new Float32Array(s.size * dim);
    for (let i = 0; i < s.size; i++) for (let j = 0; j < dim; j++) x[i * dim + j] = (s.images[i * dim + j]! - mean[j]!) / sd[j]!;
    return x;
  };
  const xtr = norm(train),
    xte = norm(test);
  const w = new Float32Array(k * dim),
    b = new Float64Array(k),
    z = new Float64Array(k);
  const lr = 0.01 / Math.sqrt(dim),
    decay = 1e-3;
  const scores = (x: Float32Array, i: number) => {
    for (let c = 0; c < k; c++) {
      let s = b[c]!;
      const o = c * dim,
        p = i * dim;
      for (let j = 0; j < dim; j++) s += w[o + j]! * x[p + j]!;
      z[c] = s;
    }
  };
  const rng = new Rng(1);
  const order = Int32Array.from({ length: train.size }, (_, i) => i);
  for (let ep = 0; ep < epochs; ep++) {
    rng.shuffle(order);
    for (const i of order) {
      scores(xtr, i);
      let mx = -Infinity,
        sum = 0;
      for (let c = 0; c < k; c++) mx = Math.max(mx, z[c]!);
      for (let c = 0; c < k; c++) sum += z[c] = Math.exp(z[c]! - mx);
      for (let c = 0; c < k; c++) {
        const g = z[c]! / sum - (c === train.labels[i] ? 1 : 0);
        b[c]! -= lr * 10 * g;
        const o = c * dim,
          p = i * dim;
        for (let j = 0; j < dim; j++) w[o + j]! -= lr * (g * xtr[p + j]! + decay * w[o + j]!);
      }
    }
  }
  const acc = (x: Float32Array, s: Split) => {
    let ok = 0;
    for (let i = 0; i < s.size; i++) {
      scores(x, i);
      let best = 0;
      for (let c = 1; c < k; c++) if (z[c]! > z[best]!) best = c;
      if (best === s.labels[i]) ok++;
    }
    return ok / s.size;
  };
  return { train: acc(xtr, train), test: acc(xte, test) };
}

/** Nearest class mean on standardised raw pixels. */
function nearestMeanProbe(train: Split, test: Split, dim: number, k: number): number {
  const means = new Float64Array(k * dim),
    n = new Float64Array(k);
  for (let i = 0; i < train.size; i++) {
    const c = train.labels[i]!;
    n[c]!++;
    for (let j = 0; j < dim; j++) means[c * dim + j]! += train.images[i * dim + j]!;
  }
  for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) means[c * dim + j]! /= n[c]!;
  let ok = 0;
  for (let i = 0; i < test.size; i++) {
    let best = 0,
      bestD = Infinity;
    for (let c = 0; c < k; c++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (test.images[i * dim + j]! - means[c * dim + j]!) ** 2;
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    if (best === test.labels[i]) ok++;
  }
  return ok / test.size;
}

describe('dataset: synthetic-faces', () => {
  describe('rng', () => {
    it('replays a stream and separates derived seeds', () => {
      const a = new Rng(42),
        b = new Rng(42);
      const xs = Array.from({ length: 50 }, () => a.next());
      expect(xs).to.deep.equal(Array.from({ length: 50 }, () => b.next()));
      expect(xs.every((x) => x >= 0 && x < 1)).to.equal(true);
      expect(deriveSeed(1, 'train')).to.not.equal(deriveSeed(1, 'test'));
      expect(deriveSeed(1, 'train', 3)).to.not.equal(deriveSeed(1, 'train', 4));
      expect(deriveSeed(1, 'train')).to.equal(deriveSeed(1, 'train'));
    });
  });

  describe('generateFerSet', () => {
    const opts = { classes: 7 as const, trainSize: 70, testSize: 21, imageSize: 32, seed: 5 };
    let data: FerData;
    before(() => {
      data = generateFerSet(opts);
    });

    it('is bit-identical for the same seed and differs for another', () => {
      const again = generateFerSet(opts);
      for (const s of ['train', 'test'] as const) {
        expect(sameArray(again[s].images, data[s].images), `${s} images`).to.equal(true);
        expect(sameArray(again[s].labels, data[s].labels)).to.equal(true);
        expect(sameArray(again[s].boxes, data[s].boxes)).to.equal(true);
        expect(sameArray(again[s].identities!, data[s].identities!)).to.equal(true);
      }
      const other = generateFerSet({ ...opts, seed: 6 });
      expect(sameArray(other.train.images, data.train.images)).to.equal(false);
    });

    it('has the contract shapes, names and [0, 1] pixels', () => {
      expect(data.name).to.equal('synthetic-faces');
      expect(data.displayName).to.equal('Synthetic faces');
      expect(data.classes).to.deep.equal(['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
      expect(data.imageSize).to.equal(32);
      expect(data.standIn).to.equal(undefined);
      for (const s of [data.train, data.test]) {
        expect(s.images).to.be.instanceOf(Float32Array);
        expect(s.images.length).to.equal(s.size * 32 * 32 * 3);
        expect(s.labels.length).to.equal(s.size);
        expect(s.boxes.length).to.equal(s.size * 4);
        expect(s.identities!.length).to.equal(s.size);
        expect([...s.annotatedBoxes!].every((v) => v === 1)).to.equal(true); // the drawn face's box is ground truth
        expect(s.annotatedBoxes!.length).to.equal(s.size);
        let lo = Infinity,
          hi = -Infinity;
        for (const v of s.images) {
          if (!(v >= 0 && v <= 1)) throw new Error(`pixel ${v} outside [0, 1]`);
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        expect(hi - lo).to.be.greaterThan(0.5);
      }
      expect(data.train.size).to.equal(70);
      expect(data.test.size).to.equal(21);
    });

    it('stratifies labels: every class within one of size/classes', () => {
      for (const s of [data.train, data.test]) {
        const c = counts(s.labels, 7);
        for (const n of c) expect(Math.abs(n - s.size / 7)).to.be.lessThan(1);
      }
      const odd = generateFerSet({ ...opts, trainSize: 75, testSize: 10 });
      for (const n of counts(odd.train.labels, 7)) expect(Math.abs(n - 75 / 7)).to.be.lessThan(1);
    });

    it('gives every image a valid face box, and the boxes vary', () => {
      for (const s of [data.train, data.test]) {
        const x1s = new Set<number>(),
          widths = new Set<number>();
        for (let i = 0; i < s.size; i++) {
          const [x1, y1, x2, y2] = s.boxes.subarray(i * 4, i * 4 + 4);
          expect(x1).to.be.at.least(0);
          expect(y1).to.be.at.least(0);
          expect(x2).to.be.at.most(32);
          expect(y2).to.be.at.most(32);
          expect(x2! - x1!).to.be.greaterThan(8);
          expect(y2! - y1!).to.be.greaterThan(8);
          x1s.add(Math.round(x1! * 10));
          widths.add(Math.round((x2! - x1!) * 10));
        }
        expect(x1s.size).to.be.greaterThan(s.size / 3);
        expect(widths.size).to.be.greaterThan(s.size / 3);
      }
    });

    it('keeps test identities out of training', () => {
      const trainIds = new Set(data.train.identities);
      const testIds = new Set(data.test.identities);
      for (const id of testIds) expect(trainIds.has(id)).to.equal(false);
      expect(trainIds.size).to.be.greaterThan(5);
      expect(testIds.size).to.be.greaterThan(1);
    });

    it('draws contempt in the 8-class setting', () => {
      const eight = generateFerSet({ ...opts, classes: 8, trainSize: 40, testSize: 16 });
      expect(eight.classes).to.have.length(8);
      expect(eight.classes[7]).to.equal('contempt');
      expect(counts(eight.train.labels, 8)[7]).to.equal(5);
      expect(counts(eight.test.labels, 8)[7]).to.equal(2);
    });

    it('works at 224 pixels', () => {
      const big = generateFerSet({ ...opts, trainSize: 2, testSize: 1, imageSize: 224 });
      expect(big.train.images.length).to.equal(2 * 224 * 224 * 3);
      const [x1, y1, x2, y2] = big.train.boxes.subarray(0, 4);
      expect(x2! - x1!).to.be.greaterThan(100);
      expect(y2! - y1!).to.be.greaterThan(100);
    });

    it('rejects nonsense sizes', () => {
      expect(() => generateFerSet({ ...opts, trainSize: -1 })).to.throw(/trainSize/);
      expect(() => generateFerSet({ ...opts, classes: 6 as 7 })).to.throw(/classes/);
      expect(() => generateFerSet({ ...opts, difficulty: { intensityMin: 0.9, intensityMax: 0.2 } })).to.throw(/intensity/);
    });
  });

  describe('pools', () => {
    it('face pool: identity labels, many identities', () => {
      const pool = generateFacePool({ size: 64, imageSize: 32, seed: 3 });
      expect(pool.kind).to.equal('faces');
      expect(pool.images.length).to.equal(64 * 32 * 32 * 3);
      expect(pool.numClasses).to.equal(8);
      for (const n of counts(pool.labels!, pool.numClasses!)) expect(n).to.equal(8);
      const again = generateFacePool({ size: 64, imageSize: 32, seed: 3 });
      expect(sameArray(again.images, pool.images)).to.equal(true);
    });

    it('generic pool: ten balanced shape families, not faces', () => {
      const pool = generateGenericPool({ size: 50, imageSize: 32, seed: 3 });
      expect(pool.kind).to.equal('generic');
      expect(pool.numClasses).to.equal(10);
      for (const n of counts(pool.labels!, 10)) expect(n).to.equal(5);
      for (const v of pool.images) if (!(v >= 0 && v <= 1)) throw new Error(`pixel ${v} outside [0, 1]`);
    });
  });

  describe('writeDatasetLayout', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ssfer-synth-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('maps our classes to RAF-DB labels and back', () => {
      expect(EXPRESSIONS_8.slice(0, 7).map((_, i) => toRafdbLabel(i))).to.deep.equal([7, 4, 5, 1, 2, 3, 6]);
      for (let i = 0; i < 8; i++) expect(fromRafdbLabel(toRafdbLabel(i))).to.equal(i);
    });

    it('writes RAF-DB basic layout with readable PNGs, labels and boxes', async () => {
      const data = generateFerSet({ classes: 7, trainSize: 9, testSize: 4, imageSize: 40, seed: 8 });
      const files = await writeDatasetLayout(data, dir);
      expect(files).to.include(join(dir, 'Image', 'aligned', 'train_00001_aligned.png'));
      expect(files).to.include(join(dir, 'Image', 'aligned', 'test_0004_aligned.png'));
      expect(files).to.include(join(dir, 'EmoLabel', 'list_patition_label.txt'));
      expect(files).to.include(join(dir, 'classes.txt'));

      const { data: raw, info } = await sharp(join(dir, 'Image', 'aligned', 'train_00003_aligned.png'))
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).to.deep.equal([40, 40, 3]);
      const px = 40 * 40 * 3;
      const ref = data.train.images.subarray(2 * px, 3 * px);
      let worst = 0;
      for (let i = 0; i < px; i++) worst = Math.max(worst, Math.abs(raw[i]! / 255 - ref[i]!));
      expect(worst).to.be.at.most(1 / 255);

      const lines = (await readFile(join(dir, 'EmoLabel', 'list_patition_label.txt'), 'utf8')).trim().split('\n');
      expect(lines).to.have.length(13);
      for (let i = 0; i < 9; i++) {
        const [name, label] = lines[i]!.split(' ');
        expect(name).to.equal(`train_${String(i + 1).padStart(5, '0')}.png`);
        expect(Number(label)).to.equal(toRafdbLabel(data.train.labels[i]!));
      }
      const [testName, testLabel] = lines[9]!.split(' ');
      expect(testName).to.equal('test_0001.png');
      expect(Number(testLabel)).to.equal(toRafdbLabel(data.test.labels[0]!));
      const happy = lines.find((l) => Number(l.split(' ')[1]) === 4);
      if (happy) {
        const idx = Number(happy.slice(happy.indexOf('_') + 1, happy.indexOf('.'))) - 1;
        const split = happy.startsWith('train') ? data.train : data.test;
        expect(data.classes[split.labels[idx]!]).to.equal('happiness');
      }

      const box = (await readFile(join(dir, 'Annotation', 'boundingbox', 'train_00002_boundingbox.txt'), 'utf8')).trim().split(' ').map(Number);
      expect(box).to.have.length(4);
      for (let j = 0; j < 4; j++) expect(box[j]).to.be.closeTo(data.train.boxes[4 + j]!, 0.006);
      const classes = (await readFile(join(dir, 'classes.txt'), 'utf8')).trim().split('\n');
      expect(classes).to.deep.equal(['1 surprise', '2 fear', '3 disgust', '4 happiness', '5 sadness', '6 anger', '7 neutral']);
    });

    it('saves an 8×8 labelled montage', async () => {
      const data = generateFerSet({ classes: 8, trainSize: 64, testSize: 0, imageSize: 48, seed: 2 });
      const sheet = renderMontage(
        data.train.images,
        48,
        64,
        Array.from(data.train.labels, (l) => data.classes[l]!),
        { boxes: data.train.boxes },
      );
      const path = join(dir, 'montage.png');
      await writeMontage(path, sheet);
      const meta = await sharp(path).metadata();
      expect(meta.width).to.equal(sheet.width);
      expect(meta.height).to.equal(sheet.height);
      expect(sheet.width).to.be.greaterThan(8 * 96);
    });
  });

  describe('difficulty', () => {
    it('a linear probe on raw 32 px pixels is well above chance but far from perfect', function () {
      this.timeout(300_000);
      const t0 = performance.now();
      const data = generateFerSet({ classes: 7, trainSize: 1500, testSize: 500, imageSize: 32, seed: 2024 });
      const genMs = performance.now() - t0;
      const dim = 32 * 32 * 3;
      const t1 = performance.now();
      const soft = softmaxProbe(data.train, data.test, dim, 7, 8);
      const ncm = nearestMeanProbe(data.train, data.test, dim, 7);
      const chance = 1 / 7;
      console.log(
        `      generated 2000 images at 32 px in ${(genMs / 1000).toFixed(2)} s; ` +
          `softmax probe train ${(soft.train * 100).toFixed(1)} % / test ${(soft.test * 100).toFixed(1)} %, ` +
          `nearest class mean ${(ncm * 100).toFixed(1)} % (chance ${(chance * 100).toFixed(1)} %, probes ${((performance.now() - t1) / 1000).toFixed(1)} s)`,
      );
      expect(soft.test).to.be.greaterThan(1.5 * chance);
      expect(soft.test).to.be.lessThan(0.95);
      expect(ncm).to.be.lessThan(0.95);
    });
  });

  describe('plugin', () => {
    it('declares a complete options schema that ajv fills with defaults', () => {
      expect(plugin.kind).to.equal('dataset');
      expect(plugin.name).to.equal('synthetic-faces');
      const schema = plugin.options as { type: string; additionalProperties: boolean; properties: Record<string, Record<string, unknown>> };
      expect(schema.type).to.equal('object');
      expect(schema.additionalProperties).to.equal(false);
      for (const [key, prop] of Object.entries(schema.properties)) {
        expect(prop, key).to.have.property('default');
        expect(prop, key).to.have.property('description');
      }
      const ajv = new Ajv.default({ useDefaults: true, strict: false });
      const validate = ajv.compile(schema);
      const filled: Record<string, unknown> = { classes: 8 };
      expect(validate(filled)).to.equal(true);
      expect(filled).to.include({ classes: 8, train_size: 2000, test_size: 700, noise: 0.02 });
      expect(validate({ bogus: 1 })).to.equal(false);
      expect(validate({ classes: 6 })).to.equal(false);
    });

    it('loads a seeded FerData and both pools', async () => {
      const options: SyntheticFacesOptions = {
        ...(Object.fromEntries(
          Object.entries((plugin.options as { properties: Record<string, { default: unknown }> }).properties).map(([k, v]) => [k, v.default]),
        ) as unknown as SyntheticFacesOptions),
        train_size: 14,
        test_size: 7,
      };
      const all = { imageSize: 32, trainSize: null, testSize: null };
      const a = await plugin.create(options, ctx(1)).load(all);
      const b = await plugin.create(options, ctx(1)).load(all);
      const c = await plugin.create(options, ctx(2)).load(all);
      expect(a.name).to.equal('synthetic-faces');
      expect(a.displayName).to.equal('Synthetic faces');
      expect(a.train.size).to.equal(14);
      expect(a.test.size).to.equal(7);
      expect(a.imageSize).to.equal(32);
      const sub = await plugin.create(options, ctx(1)).load({ imageSize: 24, trainSize: 21, testSize: 3 });
      expect([sub.train.size, sub.test.size, sub.imageSize]).to.deep.equal([21, 3, 24]);
      expect(sameArray(a.train.images, b.train.images)).to.equal(true);
      expect(sameArray(a.train.images, c.train.images)).to.equal(false);
      // Two sources of the same set (two cells of a grid) share one drawing in a process; any
      // knob of the generator makes another set.
      expect(b, 'the same set is drawn once').to.equal(a);
      const noisier = await plugin.create({ ...options, noise: 0.1 }, ctx(1)).load(all);
      expect(noisier).to.not.equal(a);
      expect(sameArray(a.train.images, noisier.train.images)).to.equal(false);
      const source = plugin.create(options, ctx(1));
      const faces = await source.pool('faces', 16, 24);
      expect(faces.kind).to.equal('faces');
      expect(faces.images.length).to.equal(16 * 24 * 24 * 3);
      const generic = await source.pool('generic', 10, 24);
      expect(generic.kind).to.equal('generic');
      expect(generic.numClasses).to.equal(10);
    });

    it('draws a picture of a few people, each in every expression, at the image size asked for', async () => {
      const source = plugin.create({ classes: 7 } as never, ctx(1));
      const a = await source.picture!(32);
      const meta = await sharp(Buffer.from(a)).metadata();
      expect(meta.format).to.equal('png');
      // 7 columns and 4 rows of 32 px tiles scaled ×3, 2 px apart, an 11 px caption under each.
      expect([meta.width, meta.height]).to.deep.equal([7 * (96 + 2) + 2, 4 * (96 + 11 + 2) + 2]);
      expect(Buffer.from(await source.picture!(32)).equals(Buffer.from(a)), 'the same picture every time').to.equal(true);
      const sheet = drawExpressionSheet({ classes: 7, imageSize: 16, seed: 3, identities: 2 });
      const px = 16 * 16 * 3;
      const tile = (k: number) => sheet.images.subarray(k * px, (k + 1) * px);
      expect(sheet.captions.slice(0, 7)).to.deep.equal(['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
      // Along a row only the expression changes: its tiles differ from each other less than from the next person's.
      const distance = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + Math.abs(v - y[i]!), 0);
      expect(distance(tile(0), tile(1))).to.be.above(0);
      expect(distance(tile(0), tile(1))).to.be.below(distance(tile(0), tile(7)));
      const stand = syntheticStandIn('rafdb', 'RAF-DB', 7, { seed: 1 });
      expect(stand.picture).to.be.a('function');
    });

    it('dresses the generator as a real dataset for stand-ins', async () => {
      const raf = syntheticStandIn('rafdb', 'RAF-DB', 7, { seed: 1, train_size: 14, test_size: 7 });
      const ferplus = syntheticStandIn('ferplus', 'FERPlus', 8, { seed: 1 });
      const r = await raf.load({ imageSize: 32, trainSize: null, testSize: null });
      const f = await ferplus.load({ imageSize: 32, trainSize: 16, testSize: 8 });
      expect(r.name).to.equal('rafdb');
      expect(r.displayName).to.equal('RAF-DB');
      expect(r.classes).to.have.length(7);
      expect(r.standIn).to.equal('synthetic stand-in for RAF-DB (dataset not configured locally)');
      expect(f.classes).to.have.length(8);
      expect(f.standIn).to.match(/FERPlus/);
      expect(sameArray(r.train.images.subarray(0, 100), f.train.images.subarray(0, 100))).to.equal(false);
      const pool = await raf.pool('faces', 8, 24);
      expect(pool.standIn).to.be.a('string');
    });
  });
});
