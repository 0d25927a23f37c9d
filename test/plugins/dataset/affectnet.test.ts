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
    expect((err as Error).message).to.match(/validation\.csv:3: face box '4,3,0,15'; expected face_x, face_y, face_width, face_height as numbers with a positive width/);
  });

  it('names a missing list file', async () => {
    const err = await load('affectnet', { root: tempDir() }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/training\.csv: file not found; expected training\.csv \(in the root or in Manually_Annotated_file_lists\/\).*SSFER_AFFECTNET_ROOT/);
  });
});
