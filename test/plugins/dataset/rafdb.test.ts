import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { decodeCounter } from '../../../src/data/decode.ts';
import { tempDir } from '../../helpers.ts';
import { colourOf, counts, datasetPlugin, load, paintedLabel, write, writeSolid } from './disk-fixtures.ts';

// RAF-DB numbering → our class names (label i+1 at index i).
const RAF = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'];
const stem = (split: string, i: number) => `${split}_${String(i + 1).padStart(split === 'train' ? 5 : 4, '0')}`;

/**
 * 21 train images (3 per class) and 7 test images, listed with RAF-DB labels. Aligned images are
 * 24 px; original images are 60×30 with a face box. Returns the RAF-DB label of every line.
 */
async function buildRafdb(dir: string): Promise<string[]> {
  const lines: string[] = [];
  const jobs: Promise<void>[] = [];
  for (const [split, n] of [
    ['train', 21],
    ['test', 7],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const raf = (i % 7) + 1;
      const ours = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger'].indexOf(RAF[raf - 1]!);
      lines.push(`${stem(split, i)}.jpg ${raf}`);
      jobs.push(writeSolid(path.join(dir, 'Image', 'aligned', `${stem(split, i)}_aligned.jpg`), 24, 24, colourOf(ours, i)));
      jobs.push(writeSolid(path.join(dir, 'Image', 'original', `${stem(split, i)}.jpg`), 60, 30, colourOf(ours, i)));
      write(path.join(dir, 'Annotation', 'boundingbox', `${stem(split, i)}_boundingbox.txt`), `${6 + i} 3.0 ${36 + i} 27.0\n`);
    }
  }
  write(path.join(dir, 'EmoLabel', 'list_patition_label.txt'), lines.join('\n') + '\n');
  await Promise.all(jobs);
  return lines;
}

describe('dataset: rafdb from disk', function () {
  this.timeout(60_000);
  let root: string;

  before(async () => {
    root = tempDir('ssfer-rafdb-');
    await buildRafdb(root);
  });

  it('reads the aligned layout: RAF-DB labels in our class order, whole-image boxes, RGB in [0, 1]', async () => {
    const data = await load('rafdb', { root });
    expect(data.standIn).to.equal(undefined);
    expect(data.notes).to.equal(undefined);
    expect(data.displayName).to.equal('RAF-DB');
    expect(data.classes).to.deep.equal(['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger']);
    expect([data.train.size, data.test.size, data.imageSize]).to.deep.equal([21, 7, 16]);
    expect(data.train.images.length).to.equal(21 * 16 * 16 * 3);
    // train_00001.jpg 1 (Surprise), train_00004.jpg 4 (Happiness), test_0007.jpg 7 (Neutral)
    expect(data.classes[data.train.labels[0]!]).to.equal('surprise');
    expect(data.classes[data.train.labels[3]!]).to.equal('happiness');
    expect(data.classes[data.test.labels[6]!]).to.equal('neutral');
    for (const s of [data.train, data.test]) {
      for (let i = 0; i < s.size; i++) expect(paintedLabel(s, i, 16), `image ${i}`).to.equal(s.labels[i]);
      expect([...s.boxes.subarray(0, 4)]).to.deep.equal([0, 0, 16, 16]);
      for (const v of s.images) if (!(v >= 0 && v <= 1)) throw new Error(`pixel ${v}`);
    }
    expect(counts(data.train.labels, 7)).to.deep.equal([3, 3, 3, 3, 3, 3, 3]);
    // no annotated box: a face detector finds them (face-boxes auto)
    expect(data.train.annotatedBoxes).to.equal(undefined);
  });

  it('reads the original layout with the annotated boxes scaled into the square image', async () => {
    const data = await load('rafdb', { root, layout: 'original' }, { imageSize: 20 });
    // train_00002: box 7 3 37 27 in a 60×30 image → ×(20/60, 20/30)
    const box = [...data.train.boxes.subarray(4, 8)];
    [7 / 3, 2, 37 / 3, 18].forEach((v, j) => expect(box[j]).to.be.closeTo(v, 1e-5));
    for (let i = 0; i < data.test.size; i++) expect(paintedLabel(data.test, i, 20)).to.equal(data.test.labels[i]);
    expect([...data.train.annotatedBoxes!]).to.deep.equal(new Array(21).fill(1));
    // and so they stay when read back from the decoded-image cache
    const cacheDir = tempDir('ssfer-cache-marks-');
    await load('rafdb', { root, layout: 'original' }, { imageSize: 20, cacheDir });
    const again = await load('rafdb', { root, layout: 'original' }, { imageSize: 20, cacheDir });
    expect([...again.test.annotatedBoxes!]).to.deep.equal(new Array(7).fill(1));
    expect([...again.train.boxes]).to.deep.equal([...data.train.boxes]);
  });

  it('takes a stratified, seeded subset when the recipe asks for fewer images', async () => {
    const a = await load('rafdb', { root }, { trainSize: 14, testSize: 7 });
    const b = await load('rafdb', { root }, { trainSize: 14, testSize: 7 });
    expect(a.train.size).to.equal(14);
    expect(counts(a.train.labels, 7)).to.deep.equal([2, 2, 2, 2, 2, 2, 2]);
    expect([...a.train.labels]).to.deep.equal([...b.train.labels]);
    expect([...a.train.images.subarray(0, 50)]).to.deep.equal([...b.train.images.subarray(0, 50)]);
    for (let i = 0; i < a.train.size; i++) expect(paintedLabel(a.train, i, 16)).to.equal(a.train.labels[i]);
  });

  describe('a damaged copy', () => {
    let bad: string;
    before(async () => {
      bad = tempDir('ssfer-rafdb-bad-');
      const lines = await buildRafdb(bad);
      lines[2] = 'train_00003.jpg'; // no label
      lines[4] = 'train_00005.jpg 9'; // not a RAF-DB label
      write(path.join(bad, 'EmoLabel', 'list_patition_label.txt'), lines.join('\n') + '\n');
    });

    it('names the file and line of a malformed line, then of an unknown label', async () => {
      let err = await load('rafdb', { root: bad }).catch((e: Error) => e);
      expect((err as Error).message).to.match(
        /list_patition_label\.txt:3: cannot read 'train_00003\.jpg'; expected an image name and a label, such as "train_00001\.jpg 5".*on_error: skip/,
      );
      write(
        path.join(bad, 'EmoLabel', 'list_patition_label.txt'),
        fs.readFileSync(path.join(bad, 'EmoLabel', 'list_patition_label.txt'), 'utf8').replace('train_00003.jpg\n', 'train_00003.jpg 3\n'),
      );
      err = await load('rafdb', { root: bad }).catch((e: Error) => e);
      expect((err as Error).message).to.match(/list_patition_label\.txt:5: label '9' is not a RAF-DB basic label; expected 1–7 \(1 Surprise, /);
    });

    it('names the listing line of a missing image and of an unreadable one', async () => {
      const copy = tempDir('ssfer-rafdb-img-');
      await buildRafdb(copy);
      fs.rmSync(path.join(copy, 'Image', 'aligned', 'train_00006_aligned.jpg'));
      let err = await load('rafdb', { root: copy }).catch((e: Error) => e);
      expect((err as Error).message).to.match(
        /list_patition_label\.txt:6: image .*train_00006_aligned\.jpg not found; expected an image file for every listed entry\. Restore the image/,
      );
      await writeSolid(path.join(copy, 'Image', 'aligned', 'train_00006_aligned.jpg'), 24, 24, [0, 0, 0]);
      fs.writeFileSync(path.join(copy, 'Image', 'aligned', 'test_0002_aligned.jpg'), 'not a jpeg at all');
      err = await load('rafdb', { root: copy }).catch((e: Error) => e);
      expect((err as Error).message).to.match(
        /list_patition_label\.txt:23: image .*test_0002_aligned\.jpg cannot be decoded \(.*\); expected a readable JPEG, PNG or WebP image\. Replace the file/,
      );
    });

    it('on_error: skip leaves the bad entries out and counts them in the notes', async () => {
      const copy = tempDir('ssfer-rafdb-skip-');
      const lines = await buildRafdb(copy);
      lines[2] = 'train_00003.jpg';
      lines[4] = 'train_00005.jpg 9';
      write(path.join(copy, 'EmoLabel', 'list_patition_label.txt'), lines.join('\n') + '\n');
      fs.rmSync(path.join(copy, 'Image', 'aligned', 'train_00006_aligned.jpg'));
      fs.writeFileSync(path.join(copy, 'Image', 'aligned', 'test_0002_aligned.jpg'), 'not a jpeg at all');
      const data = await load('rafdb', { root: copy, on_error: 'skip' });
      expect([data.train.size, data.test.size]).to.deep.equal([18, 6]);
      expect(data.notes).to.have.length(1);
      expect(data.notes![0]).to.match(
        /^skipped 4 entries under on_error: skip \(1 malformed line, 1 unknown label, 1 missing image, 1 unreadable image\); the first: .*list_patition_label\.txt:3: /,
      );
      for (let i = 0; i < data.train.size; i++) expect(paintedLabel(data.train, i, 16)).to.equal(data.train.labels[i]);
    });

    it('names a missing folder or label file and says how to point at the dataset', async () => {
      const missing = path.join(tempDir(), 'nowhere');
      let err = await load('rafdb', { root: missing }).catch((e: Error) => e);
      expect((err as Error).message).to.match(
        /nowhere: folder not found; expected the RAF-DB folder .*Set root \(relative to the recipe\) or SSFER_RAFDB_ROOT/,
      );
      err = await load('rafdb', { root: tempDir() }).catch((e: Error) => e);
      expect((err as Error).message).to.match(/EmoLabel[/\\]list_patition_label\.txt: file not found; expected EmoLabel\/list_patition_label\.txt/);
    });

    it('names a face box file that cannot be read (original layout)', async () => {
      const copy = tempDir('ssfer-rafdb-box-');
      await buildRafdb(copy);
      fs.writeFileSync(path.join(copy, 'Annotation', 'boundingbox', 'test_0001_boundingbox.txt'), '1 2 3\n');
      const err = await load('rafdb', { root: copy, layout: 'original' }).catch((e: Error) => e);
      expect((err as Error).message).to.match(/test_0001_boundingbox\.txt:1: cannot read a face box from '1 2 3'; expected four numbers x1 y1 x2 y2/);
      fs.rmSync(path.join(copy, 'Annotation', 'boundingbox', 'test_0001_boundingbox.txt'));
      const skipped = await load('rafdb', { root: copy, layout: 'original', on_error: 'skip' });
      expect(skipped.test.size).to.equal(6);
      expect(skipped.notes![0]).to.match(/1 missing image\); the first: .*list_patition_label\.txt:22: face box file .* not found/);
    });
  });

  describe('a folder that would load nothing, or little, stops at its root', () => {
    const loadError = async (options: Record<string, unknown>) => ((await load('rafdb', options).catch((e: Error) => e)) as Error).message;
    const listText = () => fs.readFileSync(path.join(root, 'EmoLabel', 'list_patition_label.txt'), 'utf8');

    it('an empty label file, under fail and skip alike', async () => {
      const copy = tempDir('ssfer-rafdb-empty-');
      write(path.join(copy, 'EmoLabel', 'list_patition_label.txt'), '\n\n');
      for (const on_error of ['fail', 'skip']) {
        expect(await loadError({ root: copy, on_error })).to.equal(
          `${copy}: EmoLabel/list_patition_label.txt is empty; expected EmoLabel/list_patition_label.txt (spelled as RAF-DB spells it) with lines such as "train_00001.jpg 5". Restore list_patition_label.txt as distributed, or set root to the folder that holds the complete RAF-DB files.`,
        );
      }
    });

    it('a label file that lists no training images', async () => {
      const copy = tempDir('ssfer-rafdb-notrain-');
      write(
        path.join(copy, 'EmoLabel', 'list_patition_label.txt'),
        listText()
          .split('\n')
          .filter((l) => l.startsWith('test'))
          .join('\n'),
      );
      expect(await loadError({ root: copy })).to.match(
        new RegExp(
          `^${copy}: RAF-DB lists no training images; expected its index files to list the training split\\. Check that root names the RAF-DB folder as distributed \\(EmoLabel/list_patition_label\\.txt \\+ Image/aligned/`,
        ),
      );
    });

    it('a root that holds the labels but not the images, under on_error: skip', async () => {
      const copy = tempDir('ssfer-rafdb-noimages-');
      write(path.join(copy, 'EmoLabel', 'list_patition_label.txt'), listText());
      const message = await loadError({ root: copy, on_error: 'skip' });
      expect(message).to.match(
        new RegExp(
          `^${copy}: none of the 21 training images of RAF-DB could be loaded; on_error: skip left out 28 missing images; the first: .*list_patition_label\\.txt:1: image .*train_00001_aligned\\.jpg not found; expected at most a few missing or unreadable images\\. Check that root names the RAF-DB folder`,
        ),
      );
      expect(message).to.match(/on_error: skip is for a few damaged entries, not for a wrong folder\.$/);
    });

    it('a split that loses more than half its images to on_error: skip; half is still loaded', async () => {
      const copy = tempDir('ssfer-rafdb-half-');
      await buildRafdb(copy);
      for (let i = 0; i < 10; i++) fs.rmSync(path.join(copy, 'Image', 'aligned', `${stem('train', i)}_aligned.jpg`));
      const data = await load('rafdb', { root: copy, on_error: 'skip' });
      expect(data.train.size).to.equal(11);
      expect(data.notes![0]).to.match(/^skipped 10 entries under on_error: skip \(10 missing images\)/);
      fs.rmSync(path.join(copy, 'Image', 'aligned', `${stem('train', 10)}_aligned.jpg`));
      expect(await loadError({ root: copy, on_error: 'skip' })).to.match(
        new RegExp(`^${copy}: only 10 of 21 training images of RAF-DB could be loaded; on_error: skip left out 11 missing images; the first: `),
      );
    });

    it('an index whose lines are mostly unreadable, under on_error: skip', async () => {
      const copy = tempDir('ssfer-rafdb-garbled-');
      await buildRafdb(copy);
      const lines = listText().trimEnd().split('\n');
      write(path.join(copy, 'EmoLabel', 'list_patition_label.txt'), lines.map((l, i) => (i < 15 ? l.replace(' ', ',') : l)).join('\n'));
      expect(await loadError({ root: copy, on_error: 'skip' })).to.match(
        new RegExp(
          `^${copy}: on_error: skip left out 15 of 28 entries of RAF-DB \\(15 malformed lines; the first: .*list_patition_label\\.txt:1: cannot read 'train_00001\\.jpg,1'\\); expected at most a few damaged entries\\.`,
        ),
      );
    });

    it('a root one level above or below the dataset names the folder that holds the label file', async () => {
      const parent = tempDir('ssfer-rafdb-parent-');
      const basic = path.join(parent, 'basic');
      fs.cpSync(root, basic, { recursive: true });
      for (const on_error of ['fail', 'skip']) {
        expect(await loadError({ root: parent, on_error })).to.match(
          new RegExp(
            `EmoLabel[/\\\\]list_patition_label\\.txt: file not found; expected .*\\. Found EmoLabel/list_patition_label\\.txt under ${basic}: set root \\(or SSFER_RAFDB_ROOT\\) to that folder\\.$`,
          ),
        );
      }
      expect(await loadError({ root: path.join(basic, 'Image') })).to.match(
        new RegExp(`Found EmoLabel/list_patition_label\\.txt under ${basic}: set root \\(or SSFER_RAFDB_ROOT\\) to that folder\\.$`),
      );
    });
  });

  it('finds the folder from root relative to the recipe, from SSFER_RAFDB_ROOT, or falls back to the stand-in', async () => {
    const parent = path.dirname(root);
    const relative = await datasetPlugin('rafdb', { root: path.basename(root) }, parent);
    expect((await relative.load({ imageSize: 8, trainSize: 7, testSize: 7 })).standIn).to.equal(undefined);
    const saved = process.env.SSFER_RAFDB_ROOT;
    try {
      process.env.SSFER_RAFDB_ROOT = root;
      expect((await (await datasetPlugin('rafdb', {})).load({ imageSize: 8, trainSize: 7, testSize: 7 })).train.size).to.equal(7);
      delete process.env.SSFER_RAFDB_ROOT;
      const standIn = await (await datasetPlugin('rafdb', {})).load({ imageSize: 8, trainSize: 7, testSize: 7 });
      expect(standIn.standIn).to.equal('synthetic stand-in for RAF-DB (dataset not configured locally)');
    } finally {
      if (saved === undefined) delete process.env.SSFER_RAFDB_ROOT;
      else process.env.SSFER_RAFDB_ROOT = saved;
    }
  });

  describe('decoded-image cache', () => {
    let cacheDir: string;
    const cached = () => load('rafdb', { root }, { cacheDir, imageSize: 12 });
    const entries = () => fs.readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));

    before(() => {
      cacheDir = tempDir('ssfer-cache-');
    });

    it('decodes once; the second load reads the cache and decodes nothing', async () => {
      const before = decodeCounter.count;
      const first = await cached();
      expect(decodeCounter.count - before).to.equal(28);
      expect(entries()).to.have.length(1);
      const mid = decodeCounter.count;
      const second = await cached();
      expect(decodeCounter.count).to.equal(mid);
      expect([...second.train.images]).to.deep.equal([...first.train.images]);
      expect([...second.test.labels]).to.deep.equal([...first.test.labels]);
      expect([...second.train.boxes]).to.deep.equal([...first.train.boxes]);
      expect(fs.readdirSync(cacheDir).some((f) => f.endsWith('.tmp'))).to.equal(false);
    });

    it('rebuilds a truncated or damaged entry', async () => {
      const file = path.join(cacheDir, entries()[0]!);
      const intact = fs.readFileSync(file);
      fs.writeFileSync(file, intact.subarray(0, intact.length - 500));
      let before = decodeCounter.count;
      const rebuilt = await cached();
      expect(decodeCounter.count - before).to.equal(28);
      expect(fs.readFileSync(file).equals(intact)).to.equal(true);
      expect(rebuilt.train.size).to.equal(21);
      const damaged = Buffer.from(intact);
      damaged[damaged.length - 1000] ^= 0xff;
      fs.writeFileSync(file, damaged);
      before = decodeCounter.count;
      await cached();
      expect(decodeCounter.count - before).to.equal(28);
      before = decodeCounter.count;
      await cached();
      expect(decodeCounter.count - before).to.equal(0);
    });

    it('decodes again when an image, the label file or the size changes', async () => {
      const image = path.join(root, 'Image', 'aligned', 'test_0003_aligned.jpg');
      const future = new Date(Date.now() + 60_000);
      fs.utimesSync(image, future, future);
      let before = decodeCounter.count;
      await cached();
      expect(decodeCounter.count - before).to.equal(28);
      before = decodeCounter.count;
      await load('rafdb', { root }, { cacheDir, imageSize: 10 });
      expect(decodeCounter.count - before).to.equal(28);
      expect(entries()).to.have.length(3);
    });
  });
});
