import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Split } from '../../../src/contracts/dataset.ts';
import { AGE_GROUPS, ageGroup } from '../../../plugins/dataset/adience.ts';
import { tempDir } from '../../helpers.ts';
import { counts, datasetPlugin, load, paintedLabel, write, writeSolid } from './disk-fixtures.ts';

const HEADER = ['user_id', 'original_image', 'face_id', 'age', 'gender', 'x', 'y', 'dx', 'dy', 'tilt_ang', 'fiducial_yaw_angle', 'fiducial_score'].join('\t');

interface Row {
  readonly user: string;
  readonly image: string;
  readonly face: number;
  readonly age: string;
  readonly gender: string;
}

// Per fold: ages and genders as the fold files write them, odd entries included.
const AGES = ['(0, 2)', '(4, 6)', '(8, 12)', '(15, 20)', '(25, 32)', '(38, 43)', '(48, 53)', '(60, 100)', '(8, 23)', '35', 'None', '3'];
const GENDERS = ['f', 'm', 'f', 'm', 'u', 'm', 'f', '', 'm', 'f', 'm', 'f'];

function foldRows(fold: number): Row[] {
  return AGES.map((age, i) => ({
    user: `${1000 + fold}@N0${fold}`,
    image: `photo_${fold}_${i}.jpg`,
    face: i + 1,
    age,
    gender: GENDERS[(i + fold) % GENDERS.length]!,
  }));
}

/** Five fold files and the aligned (and faces) crops, painted with the gender (red) and fold (blue). */
async function buildAdience(dir: string, edit: (fold: number, rows: Row[]) => void = () => {}): Promise<Row[][]> {
  const folds: Row[][] = [];
  const jobs: Promise<void>[] = [];
  for (let fold = 0; fold < 5; fold++) {
    const rows = foldRows(fold);
    rows.forEach((r, i) => {
      const colour = [20 + 25 * (r.gender === 'm' ? 1 : 0), 10 * i, 20 + 40 * fold];
      jobs.push(writeSolid(path.join(dir, 'aligned', r.user, `landmark_aligned_face.${r.face}.${r.image}`), 30, 30, colour));
      if (fold === 0) jobs.push(writeSolid(path.join(dir, 'faces', r.user, `coarse_tilt_aligned_face.${r.face}.${r.image}`), 40, 40, colour));
    });
    edit(fold, rows);
    const text = [HEADER, ...rows.map((r) => [r.user, r.image, r.face, r.age, r.gender, 10, 20, 300, 300, 0, 0, 50].join('\t'))].join('\n');
    write(path.join(dir, `fold_${fold}_data.txt`), text + '\n');
    folds.push(rows);
  }
  await Promise.all(jobs);
  return folds;
}

const foldPainted = (s: Split, i: number) => Math.round((s.images[i * 16 * 16 * 3 + 2]! * 255 - 20) / 40);

describe('dataset: adience from disk', function () {
  this.timeout(60_000);
  let root: string;

  before(async () => {
    root = tempDir('ssfer-adience-');
    await buildAdience(root);
  });

  it('maps the fold files’ age strings to the eight benchmark groups', () => {
    expect(AGE_GROUPS).to.deep.equal(['0-2', '4-6', '8-13', '15-20', '25-32', '38-43', '48-53', '60-']);
    const cases: [string, string | null][] = [
      ['(0, 2)', '0-2'],
      ['(4, 6)', '4-6'],
      ['(8, 12)', '8-13'],
      ['(8, 13)', '8-13'],
      ['(15, 20)', '15-20'],
      ['(25, 32)', '25-32'],
      ['(38, 43)', '38-43'],
      ['(48, 53)', '48-53'],
      ['(60, 100)', '60-'],
      ['(8, 23)', '15-20'],
      ['(27, 32)', '25-32'],
      ['(38, 42)', '38-43'],
      ['(38, 48)', '38-43'],
      ['2', '0-2'],
      ['3', '4-6'],
      ['13', '8-13'],
      ['22', '15-20'],
      ['23', '25-32'],
      ['29', '25-32'],
      ['32', '25-32'],
      ['34', '25-32'],
      ['35', '38-43'],
      ['36', '38-43'],
      ['42', '38-43'],
      ['45', '38-43'],
      ['46', '48-53'],
      ['55', '48-53'],
      ['56', '48-53'],
      ['57', '60-'],
      ['58', '60-'],
      ['None', 'none'],
      [' ', 'none'],
      ['abc', null],
      ['(12, 8)', null],
    ];
    for (const [text, group] of cases) {
      const g = ageGroup(text);
      expect(typeof g === 'number' ? AGE_GROUPS[g] : g, text).to.equal(group);
    }
  });

  it('gender: f and m kept, u and empty left out, every image in train with its official fold', async () => {
    const data = await load('adience', { root });
    expect(data.displayName).to.equal('Adience (gender)');
    expect(data.classes).to.deep.equal(['female', 'male']);
    expect(data.test.size).to.equal(0);
    // each fold: 12 rows, one 'u' and one empty gender
    expect(data.train.size).to.equal(50);
    expect([...counts(data.train.folds!, 5)]).to.deep.equal([10, 10, 10, 10, 10]);
    for (let i = 0; i < data.train.size; i++) {
      expect(paintedLabel(data.train, i, 16)).to.equal(data.train.labels[i]);
      expect(foldPainted(data.train, i), `fold of image ${i}`).to.equal(data.train.folds![i]);
    }
    expect([...data.train.boxes.subarray(0, 4)]).to.deep.equal([0, 0, 16, 16]);
    expect(data.train.annotatedBoxes).to.equal(undefined); // the crops' boxes are not annotated
    expect(data.notes).to.deep.equal(['left out 5 rows: gender u (unknown)', 'left out 5 rows: no gender given']);
  });

  it('age: the eight groups, None left out; a subset keeps each image’s fold', async () => {
    const data = await load('adience', { root, task: 'age' });
    expect(data.classes).to.deep.equal(AGE_GROUPS);
    expect(data.train.size).to.equal(55);
    // fold 0 in file order: (0, 2) … (60, 100), (8, 23), 35, [None], 3
    expect([...data.train.labels.subarray(0, 11)].map((l) => AGE_GROUPS[l])).to.deep.equal([
      '0-2',
      '4-6',
      '8-13',
      '15-20',
      '25-32',
      '38-43',
      '48-53',
      '60-',
      '15-20',
      '38-43',
      '4-6',
    ]);
    expect(data.notes).to.deep.equal(['left out 5 rows: no age given (None)']);
    const sub = await load('adience', { root, task: 'age' }, { trainSize: 20 });
    expect(sub.train.size).to.equal(20);
    expect(sub.train.folds!.length).to.equal(20);
    for (let i = 0; i < sub.train.size; i++) expect(foldPainted(sub.train, i)).to.equal(sub.train.folds![i]);
  });

  it('reads the faces/ crops with layout: faces', async () => {
    const only0 = tempDir('ssfer-adience-faces-');
    fs.cpSync(root, only0, { recursive: true });
    for (let f = 1; f < 5; f++) write(path.join(only0, `fold_${f}_data.txt`), HEADER + '\n');
    const data = await load('adience', { root: only0, layout: 'faces' });
    expect(data.train.size).to.equal(10);
    for (let i = 0; i < data.train.size; i++) expect(paintedLabel(data.train, i, 16)).to.equal(data.train.labels[i]);
  });

  it('names the file and line of an unknown gender, an unreadable age and a missing image', async () => {
    const bad = tempDir('ssfer-adience-bad-');
    await buildAdience(bad, (fold, rows) => {
      if (fold === 2) rows[3] = { ...rows[3]!, gender: 'x', age: 'about 30' };
      if (fold === 4) rows[0] = { ...rows[0]!, image: 'gone.jpg' };
    });
    let err = await load('adience', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fold_2_data\.txt:5: gender 'x' is not an Adience gender; expected f or m/);
    err = await load('adience', { root: bad, task: 'age' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fold_2_data\.txt:5: age 'about 30' cannot be read; expected a range such as "\(25, 32\)"/);
    const data = await load('adience', { root: bad, task: 'age', on_error: 'skip' });
    expect(data.train.size).to.equal(53);
    expect(data.notes!.at(-1)).to.match(/\(1 unknown label, 1 missing image\); the first: .*fold_2_data\.txt:5: /);
    fs.rmSync(path.join(bad, 'fold_3_data.txt'));
    err = await load('adience', { root: bad, on_error: 'skip' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fold_3_data\.txt: file not found; expected fold_0_data\.txt … fold_4_data\.txt/);
  });

  it('stands in with the task’s classes and folds when not configured locally', async () => {
    const saved = process.env.SSFER_ADIENCE_ROOT;
    delete process.env.SSFER_ADIENCE_ROOT;
    try {
      const gender = await (await datasetPlugin('adience', {})).load({ imageSize: 16, trainSize: 40, testSize: 10 });
      expect(gender.classes).to.deep.equal(['female', 'male']);
      expect(gender.train.size).to.equal(40);
      expect(gender.test.size).to.equal(0);
      expect(counts(gender.train.labels, 2)).to.deep.equal([20, 20]);
      expect(new Set(gender.train.folds).size).to.equal(5);
      expect([...gender.train.annotatedBoxes!]).to.deep.equal(new Array(40).fill(1)); // drawn faces: ground-truth boxes
      expect(gender.standIn).to.equal(
        'synthetic stand-in for Adience (gender) (dataset not configured locally): faces drawn with 8 expressions, expression i labelled as class i mod 2 (female, male); every image in train, 5 folds by drawn identity',
      );
      const age = await (await datasetPlugin('adience', { task: 'age' })).load({ imageSize: 16, trainSize: 40, testSize: null });
      expect(age.classes).to.deep.equal(AGE_GROUPS);
      expect(counts(age.train.labels, 8)).to.deep.equal([5, 5, 5, 5, 5, 5, 5, 5]);
    } finally {
      if (saved !== undefined) process.env.SSFER_ADIENCE_ROOT = saved;
    }
  });

  it('stops at the root when a fold file is empty; an empty test split is its design, not an error', async () => {
    const copy = tempDir('ssfer-adience-empty-');
    await buildAdience(copy);
    write(path.join(copy, 'fold_3_data.txt'), '\n');
    const err = await load('adience', { root: copy, on_error: 'skip' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(new RegExp(`^${copy}: fold_3_data\\.txt is empty; expected fold_0_data\\.txt … fold_4_data\\.txt`));
    expect((await load('adience', { root })).test.size).to.equal(0);
  });
});
