import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir } from '../../helpers.ts';
import { colourOf, counts, datasetPlugin, load, paintedLabel, write, writeSolid } from './disk-fixtures.ts';

const SORTED = ['angry', 'happy', 'sad'];

/** train/<class>/ with 4 images per class (png, jpg, jpeg, webp) and test/<class>/ with 2; 50×25 each. */
async function buildFolder(dir: string, paintAs: readonly string[] = SORTED): Promise<void> {
  const jobs: Promise<void>[] = [];
  for (const [split, n] of [
    ['train', 4],
    ['test', 2],
  ] as const) {
    for (const name of SORTED) {
      for (let i = 0; i < n; i++) {
        const ext = ['png', 'jpg', 'jpeg', 'webp'][i]!;
        jobs.push(writeSolid(path.join(dir, split, name, `img_${i}.${ext}`), 50, 25, colourOf(paintAs.indexOf(name), i)));
      }
    }
  }
  write(path.join(dir, 'train', 'happy', 'notes.txt'), 'not an image');
  write(path.join(dir, 'train', 'happy', '.hidden.png'), 'not an image either');
  await Promise.all(jobs);
}

describe('dataset: image-folder', function () {
  this.timeout(60_000);
  let root: string;

  before(async () => {
    root = tempDir('ssfer-folder-');
    await buildFolder(root);
  });

  it('takes the sorted class folders as classes and ignores other files', async () => {
    const data = await load('image-folder', { root });
    expect(data.classes).to.deep.equal(SORTED);
    expect(data.name).to.equal('image-folder');
    expect(data.standIn).to.equal(undefined);
    expect(data.source).to.equal(root);
    expect([data.train.size, data.test.size]).to.deep.equal([12, 6]);
    expect(counts(data.train.labels, 3)).to.deep.equal([4, 4, 4]);
    for (const s of [data.train, data.test]) for (let i = 0; i < s.size; i++) expect(paintedLabel(s, i, 16)).to.equal(s.labels[i]);
    expect([...data.train.boxes.subarray(0, 4)]).to.deep.equal([0, 0, 16, 16]);
    expect(data.train.annotatedBoxes).to.equal(undefined);
  });

  it('uses the order of the classes option as the label order', async () => {
    const order = ['sad', 'happy', 'angry'];
    const listed = tempDir('ssfer-folder-order-');
    await buildFolder(listed, order);
    const data = await load('image-folder', { root: listed, classes: order });
    expect(data.classes).to.deep.equal(order);
    for (let i = 0; i < data.train.size; i++) expect(paintedLabel(data.train, i, 16)).to.equal(data.train.labels[i]);
  });

  it('reads face boxes from a CSV relative to root and scales them with the image', async () => {
    write(path.join(root, 'boxes.csv'), 'path,x1,y1,x2,y2\ntrain/angry/img_1.jpg,5,5,30,20\n./test/sad/img_0.png,10,0,50,25\n');
    const data = await load('image-folder', { root, boxes: 'boxes.csv' });
    // train/angry/img_1.jpg is train image 1; test/sad/img_0.png is test image 4; ×(16/50, 16/25)
    [1.6, 3.2, 9.6, 12.8].forEach((v, j) => expect(data.train.boxes[4 + j]).to.be.closeTo(v, 1e-5));
    [3.2, 0, 16, 16].forEach((v, j) => expect(data.test.boxes[16 + j]).to.be.closeTo(v, 1e-5));
    expect([...data.train.boxes.subarray(0, 4)]).to.deep.equal([0, 0, 16, 16]);
    // which boxes are annotated: the auto face boxes detect the others
    expect([...data.train.annotatedBoxes!]).to.deep.equal([0, 1, ...new Array(10).fill(0)]);
    expect([...data.test.annotatedBoxes!]).to.deep.equal([0, 0, 0, 0, 1, 0]);
  });

  it('names a class folder outside the classes, a bad boxes line, a box for no image and a missing split', async () => {
    const bad = tempDir('ssfer-folder-bad-');
    await buildFolder(bad);
    fs.mkdirSync(path.join(bad, 'test', 'surprised'));
    await writeSolid(path.join(bad, 'test', 'surprised', 'x.png'), 8, 8, [0, 0, 0]);
    let err = await load('image-folder', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/test[/\\]surprised: class folder 'surprised' is not one of the classes; expected one of angry, happy, sad/);
    err = await load('image-folder', { root: bad, classes: ['happy', 'sad'] }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/train[/\\]angry: class folder 'angry' is not one of the classes; expected one of happy, sad/);

    write(path.join(bad, 'boxes.csv'), 'train/angry/img_0.png,1,2,3\ntrain/angry/nope.png,1,2,3,4\n');
    const skipped = await load('image-folder', { root: bad, boxes: 'boxes.csv', on_error: 'skip' });
    expect(skipped.test.size).to.equal(6);
    expect(skipped.notes).to.deep.equal([
      `skipped 3 entries under on_error: skip (1 malformed line, 1 unknown label, 1 missing image); the first: ${path.join(bad, 'boxes.csv')}:1: cannot read 'train/angry/img_0.png,1,2,3'`,
    ]);
    fs.rmSync(path.join(bad, 'test', 'surprised'), { recursive: true });
    fs.writeFileSync(path.join(bad, 'boxes.csv'), 'train/angry/nope.png,1,2,3,4\n');
    err = await load('image-folder', { root: bad, boxes: 'boxes.csv' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      /boxes\.csv:1: no image train\/angry\/nope\.png under .*; expected the path, relative to root, of an image under train\/ or test\//,
    );

    fs.rmSync(path.join(bad, 'test'), { recursive: true });
    err = await load('image-folder', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/test: folder not found; expected test\/ with one folder per class/);
  });

  it('requires root: there is no stand-in', async () => {
    const err = await datasetPlugin('image-folder', {}).catch((e: Error) => e);
    expect((err as Error).message).to.match(/image-folder': invalid options: .*root/);
  });

  it('stops at the root when the class folders hold no images, and names the folder one level down that holds train/', async () => {
    const empty = tempDir('ssfer-folder-empty-');
    for (const name of SORTED) for (const s of ['train', 'test']) fs.mkdirSync(path.join(empty, s, name), { recursive: true });
    const err = await load('image-folder', { root: empty, on_error: 'skip' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      new RegExp(`^${empty}: ${path.basename(empty)} lists no training images; expected its index files to list the training split\\.`),
    );
    const parent = tempDir('ssfer-folder-parent-');
    fs.cpSync(root, path.join(parent, 'faces'), { recursive: true });
    const up = await load('image-folder', { root: parent }).catch((e: Error) => e);
    expect((up as Error).message).to.match(
      new RegExp(
        `train: folder not found; expected train/ with one folder per class .*\\. Found train under ${path.join(parent, 'faces')}: set root to that folder\\.$`,
      ),
    );
  });
});
