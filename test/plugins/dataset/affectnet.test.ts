import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir } from '../../helpers.ts';
import { colourOf, counts, load, paintedLabel, write, writeSolid } from './disk-fixtures.ts';

const HEADER = 'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal';
const NAMES = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];

interface Row {
  readonly file: string;
  readonly expression: number | string;
  readonly box?: string;
}

const line = (r: Row) => `${r.file},${r.box ?? '4,3,20,15'},"10.5;12.25;14.0;16.5",${r.expression},0.25,-0.5`;

/**
 * training.csv (with its header, in the root): two rows per expression 0–7 and one each of 8, 9,
 * 10; validation.csv (without a header, in Manually_Annotated_file_lists/): one per expression.
 * Images are 40×30 with the face box 4,3 (20×15), painted with their label.
 */
async function buildAffectnet(dir: string, edit: (train: Row[], val: Row[]) => void = () => {}): Promise<void> {
  const train: Row[] = [];
  const val: Row[] = [];
  for (let e = 0; e <= 7; e++) for (let k = 0; k < 2; k++) train.push({ file: `${100 + e}/train_${e}_${k}.jpg`, expression: e });
  for (const e of [8, 9, 10]) train.push({ file: `200/other_${e}.jpg`, expression: e });
  for (let e = 0; e <= 7; e++) val.push({ file: `300/val_${e}.png`, expression: e });
  const jobs = [...train, ...val].map((r, i) => writeSolid(path.join(dir, 'Manually_Annotated_Images', r.file), 40, 30, colourOf(Number(r.expression) % 8, i)));
  edit(train, val);
  write(path.join(dir, 'training.csv'), [HEADER, ...train.map(line)].join('\n') + '\n');
  write(path.join(dir, 'Manually_Annotated_file_lists', 'validation.csv'), val.map(line).join('\n') + '\n');
  await Promise.all(jobs);
}

describe('dataset: affectnet from disk', function () {
  this.timeout(60_000);
  let root: string;

  before(async () => {
    root = tempDir('ssfer-affectnet-');
    await buildAffectnet(root);
  });

  it('reads 8 classes: non-expression rows left out, validation.csv as the test split, face boxes scaled', async () => {
    const data = await load('affectnet', { root, classes: 8 });
    expect(data.displayName).to.equal('AffectNet-8');
    expect(data.classes).to.deep.equal(NAMES);
    expect([data.train.size, data.test.size]).to.deep.equal([16, 8]);
    expect(data.classes[data.train.labels[6]!]).to.equal('surprise'); // 103/train_3_0.jpg, expression 3
    expect(data.classes[data.test.labels[7]!]).to.equal('contempt'); // 300/val_7.png
    expect(counts(data.train.labels, 8)).to.deep.equal([2, 2, 2, 2, 2, 2, 2, 2]);
    for (const s of [data.train, data.test]) for (let i = 0; i < s.size; i++) expect(paintedLabel(s, i, 16)).to.equal(s.labels[i]);
    // box 4,3 + 20×15 in a 40×30 image → ×(16/40, 16/30)
    [1.6, 1.6, 9.6, 9.6].forEach((v, j) => expect(data.test.boxes[j]).to.be.closeTo(v, 1e-5));
    expect([...data.train.annotatedBoxes!]).to.deep.equal(new Array(16).fill(1));
    expect(data.notes).to.deep.equal([
      'left out 1 row: expression 8 (None) is not an expression',
      'left out 1 row: expression 9 (Uncertain) is not an expression',
      'left out 1 row: expression 10 (Non-Face) is not an expression',
    ]);
  });

  it('reads 7 classes by leaving contempt out too', async () => {
    const data = await load('affectnet', { root });
    expect(data.displayName).to.equal('AffectNet-7');
    expect(data.classes).to.deep.equal(NAMES.slice(0, 7));
    expect([data.train.size, data.test.size]).to.deep.equal([14, 7]);
    expect(data.notes).to.include('left out 3 rows: contempt (the 7-class setting)');
  });

  it('names the file and line of an unknown expression, a broken face box and a missing image', async () => {
    const bad = tempDir('ssfer-affectnet-bad-');
    await buildAffectnet(bad, (train, val) => {
      train[3] = { ...train[3]!, expression: 12 };
      val[2] = { ...val[2]!, box: '4,3,0,15' };
      train[5] = { ...train[5]!, file: '102/nowhere.jpg' };
    });
    let err = await load('affectnet', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/training\.csv:5: expression '12' is not an AffectNet expression id; expected 0–7 \(0 Neutral, /);
    const data = await load('affectnet', { root: bad, on_error: 'skip' });
    expect([data.train.size, data.test.size]).to.deep.equal([12, 6]);
    expect(data.notes!.at(-1)).to.match(/^skipped 3 entries under on_error: skip \(1 unknown label, 1 malformed line, 1 missing image\)/);
    fs.writeFileSync(path.join(bad, 'training.csv'), fs.readFileSync(path.join(bad, 'training.csv'), 'utf8').replace(',12,', ',1,'));
    err = await load('affectnet', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      /validation\.csv:3: face box '4,3,0,15'; expected face_x, face_y, face_width, face_height as numbers with a positive width/,
    );
  });

  it('names a missing list file', async () => {
    const err = await load('affectnet', { root: tempDir() }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      /training\.csv: file not found; expected training\.csv \(in the root or in Manually_Annotated_file_lists\/\).*SSFER_AFFECTNET_ROOT/,
    );
  });

  it('reads a header with its columns in another order by their names', async () => {
    const shuffled = tempDir('ssfer-affectnet-order-');
    await buildAffectnet(shuffled);
    const order = [6, 0, 8, 4, 1, 5, 3, 2, 7]; // expression first, the box columns scattered
    const reorder = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((l) => {
          const f = l.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
          return order.map((k) => f[k]).join(',');
        })
        .join('\n');
    fs.writeFileSync(path.join(shuffled, 'training.csv'), reorder(fs.readFileSync(path.join(shuffled, 'training.csv'), 'utf8')));
    expect(fs.readFileSync(path.join(shuffled, 'training.csv'), 'utf8')).to.match(/^expression,subDirectory_filePath,arousal,face_height,face_x,/);
    const [ours, as] = [await load('affectnet', { root: shuffled, classes: 8 }), await load('affectnet', { root, classes: 8 })];
    expect([...ours.train.labels]).to.deep.equal([...as.train.labels]);
    expect([...ours.train.boxes]).to.deep.equal([...as.train.boxes]);
    expect([...ours.train.images]).to.deep.equal([...as.train.images]);
    // a header without a column the loader reads is named
    fs.writeFileSync(path.join(shuffled, 'training.csv'), fs.readFileSync(path.join(shuffled, 'training.csv'), 'utf8').replace('face_height', 'face_h'));
    const err = await load('affectnet', { root: shuffled }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      /training\.csv:1: the header lacks face_height; expected a header naming subDirectory_filePath, face_x, face_y, face_width, face_height, expression \(in any order\)/,
    );
  });

  it('stops at the root when a list file is empty or lists no images, and names the folder one level down that holds it', async () => {
    const copy = tempDir('ssfer-affectnet-empty-');
    await buildAffectnet(copy);
    fs.writeFileSync(path.join(copy, 'training.csv'), `${HEADER}\n`);
    let err = await load('affectnet', { root: copy, on_error: 'skip' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      new RegExp(
        `^${copy}: AffectNet-7 lists no training images \\(left out 1 row: contempt \\(the 7-class setting\\)\\); expected its index files to list the training split\\.`,
      ),
    );
    fs.writeFileSync(path.join(copy, 'Manually_Annotated_file_lists', 'validation.csv'), '');
    err = await load('affectnet', { root: copy }).catch((e: Error) => e);
    expect((err as Error).message).to.equal(
      `${copy}: Manually_Annotated_file_lists/validation.csv is empty; expected validation.csv (in the root or in Manually_Annotated_file_lists/) with the columns ${HEADER}. Restore validation.csv as distributed, or set root to the folder that holds the complete AffectNet files.`,
    );
    const parent = tempDir('ssfer-affectnet-parent-');
    fs.cpSync(root, path.join(parent, 'AffectNet'), { recursive: true });
    err = await load('affectnet', { root: parent }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      new RegExp(
        `training\\.csv: file not found; .*Found training\\.csv under ${path.join(parent, 'AffectNet')}: set root \\(or SSFER_AFFECTNET_ROOT\\) to that folder\\.$`,
      ),
    );
  });
});
