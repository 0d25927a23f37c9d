import path from 'node:path';
import { expect } from 'chai';
import { majority, VOTE_COLUMNS } from '../../../plugins/dataset/ferplus.ts';
import { tempDir } from '../../helpers.ts';
import { counts, load, paintedLabel, write } from './disk-fixtures.ts';

const OURS = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];
type Row = { usage: string; votes: number[]; name?: string; pixels?: string; grey?: number };

/** Ten annotators' votes for one column. */
const all = (column: string): number[] => VOTE_COLUMNS.map((c) => (c === column ? 10 : 0));
const greyOf = (name: string) => 20 + 25 * OURS.indexOf(name);

// Hand-made vote rows, in VOTE_COLUMNS order: neutral … contempt, unknown, NF.
const HAND: { votes: number[]; expect: string; name?: string }[] = [
  { votes: [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], expect: 'neutral' },
  { votes: [0, 6, 0, 0, 0, 0, 0, 0, 4, 0], expect: 'happiness' },
  { votes: [0, 5, 5, 0, 0, 0, 0, 0, 0, 0], expect: 'drop' }, // a tie holds no majority
  { votes: [4, 3, 1, 1, 1, 0, 0, 0, 0, 0], expect: 'neutral' }, // single votes removed: 4 of 7
  { votes: [0, 0, 0, 0, 0, 0, 0, 0, 7, 3], expect: 'drop' }, // unknown wins
  { votes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], expect: 'drop' }, // not a face
  { votes: [0, 0, 0, 0, 0, 0, 0, 8, 2, 0], expect: 'contempt' },
  { votes: [3, 3, 2, 2, 0, 0, 0, 0, 0, 0], expect: 'drop' }, // 3 of 10 is no majority
  { votes: [0, 9, 0, 0, 0, 0, 0, 0, 0, 1], expect: 'happiness', name: '' }, // no image name: dropped
];

function pixelsOf(grey: number, n = 48 * 48): string {
  return Array.from({ length: n }, () => String(grey)).join(' ');
}

/** Writes fer2013.csv and fer2013new.csv; every row's pixels are painted with its label. */
function writeFerplus(dir: string, rows: Row[]): void {
  const fer = ['emotion,pixels,Usage', ...rows.map((r) => `0,${r.pixels ?? pixelsOf(r.grey ?? 0)},${r.usage}`)];
  const plus = ['Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF'];
  rows.forEach((r, i) => plus.push(`${r.usage},${r.name ?? `fer${String(i).padStart(7, '0')}.png`},${r.votes.join(',')}`));
  write(path.join(dir, 'fer2013.csv'), fer.join('\n') + '\n');
  write(path.join(dir, 'fer2013new.csv'), plus.join('\r\n') + '\r\n');
}

function fixtureRows(): Row[] {
  const rows: Row[] = HAND.map((h) => ({
    usage: 'Training',
    votes: h.votes,
    ...(h.name !== undefined ? { name: h.name } : {}),
    grey: h.expect === 'drop' ? 0 : greyOf(h.expect),
  }));
  for (const column of VOTE_COLUMNS.slice(0, 8)) {
    for (const usage of ['Training', 'Training', 'PublicTest', 'PrivateTest']) rows.push({ usage, votes: all(column), grey: greyOf(column) });
  }
  return rows;
}

describe('dataset: ferplus from disk', function () {
  this.timeout(60_000);
  let root: string;

  before(() => {
    root = tempDir('ssfer-ferplus-');
    writeFerplus(root, fixtureRows());
  });

  it('applies the FERPlus majority rule to hand-made vote rows', () => {
    for (const h of HAND.filter((x) => x.name === undefined)) {
      const m = majority(h.votes);
      expect('label' in m ? m.label : 'drop', h.votes.join(',')).to.equal(h.expect);
    }
    expect(majority([0, 0, 0, 0, 0, 0, 0, 0, 7, 3])).to.deep.equal({ drop: '"unknown" wins the vote' });
    expect(majority([0, 0, 0, 0, 0, 0, 0, 0, 0, 10])).to.deep.equal({ drop: 'voted not a face (NF)' });
    expect(majority([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])).to.have.property('drop'); // every vote a lone one
  });

  it('reads 8 classes: Training rows train, PublicTest + PrivateTest test, pixels grey → RGB', async () => {
    const data = await load('ferplus', { root });
    expect(data.displayName).to.equal('FERPlus');
    expect(data.classes).to.deep.equal(OURS);
    expect(data.train.size).to.equal(16 + 4); // fillers + the four kept hand rows
    expect(data.test.size).to.equal(16);
    expect(data.train.labels.slice(0, 4)).to.deep.equal(Int32Array.from([0, 1, 0, 7]));
    expect(counts(data.test.labels, 8)).to.deep.equal([2, 2, 2, 2, 2, 2, 2, 2]);
    for (const s of [data.train, data.test]) {
      for (let i = 0; i < s.size; i++) expect(paintedLabel(s, i, 16), `image ${i}`).to.equal(s.labels[i]);
      const px = s.images.subarray(0, 3);
      expect(px[0]).to.equal(px[1]);
      expect(px[1]).to.equal(px[2]);
      expect([...s.boxes.subarray(0, 4)]).to.deep.equal([0, 0, 16, 16]);
      expect(s.annotatedBoxes).to.equal(undefined); // FER2013 has no face boxes: a detector finds them
    }
    expect(data.notes).to.include.members([
      'left out 2 rows: no emotion holds a majority of the votes (FERPlus majority rule)',
      'left out 1 row: "unknown" wins the vote',
      'left out 1 row: voted not a face (NF)',
      'left out 1 row: no image name in fer2013new.csv (FERPlus dropped the image)',
    ]);
  });

  it('reads 7 classes by leaving the contempt rows out', async () => {
    const data = await load('ferplus', { root, classes: 7 });
    expect(data.displayName).to.equal('FERPlus-7');
    expect(data.classes).to.deep.equal(OURS.slice(0, 7));
    expect([data.train.size, data.test.size]).to.deep.equal([17, 14]);
    expect(data.notes).to.include('left out 5 rows: contempt (the 7-class setting)');
  });

  it('names the file and line of a malformed row, an unknown usage and a broken pixel field', async () => {
    const rows = fixtureRows();
    rows[10] = { ...rows[10]!, votes: [0, 0, 0, 0, 0, 0, 0, 0, 0] }; // nine vote columns
    const bad = tempDir('ssfer-ferplus-bad-');
    writeFerplus(bad, rows);
    let err = await load('ferplus', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fer2013new\.csv:12: cannot read '.*'; expected Usage,Image name and 10 vote counts/);

    rows[10] = { ...rows[10]!, votes: all('anger') };
    rows[12] = { ...rows[12]!, usage: 'Validation' };
    writeFerplus(bad, rows);
    err = await load('ferplus', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fer2013\.csv:14: Usage 'Validation'; expected Training, PublicTest or PrivateTest/);

    rows[12] = { ...rows[12]!, usage: 'PublicTest' };
    rows[13] = { ...rows[13]!, pixels: pixelsOf(60, 2303) };
    writeFerplus(bad, rows);
    err = await load('ferplus', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fer2013\.csv:15: the pixels field holds 2303 values; expected 2304 grey levels 0–255/);

    const skipped = await load('ferplus', { root: bad, on_error: 'skip' });
    expect([skipped.train.size, skipped.test.size]).to.deep.equal([19, 16]);
    expect(skipped.notes!.at(-1)).to.match(/^skipped 1 entry under on_error: skip \(1 malformed line\); the first: .*fer2013\.csv:15: /);
  });

  it('refuses vote and image files that do not belong together', async () => {
    const bad = tempDir('ssfer-ferplus-pair-');
    writeFerplus(bad, fixtureRows());
    write(path.join(bad, 'fer2013.csv'), ['emotion,pixels,Usage', `0,${pixelsOf(1)},Training`].join('\n'));
    const err = await load('ferplus', { root: bad }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/fer2013new\.csv: 41 vote rows for 1 images in fer2013\.csv; expected one vote row per fer2013\.csv row/);
  });

  it('stops at the root when fer2013.csv is empty or lists no training rows', async () => {
    const copy = tempDir('ssfer-ferplus-empty-');
    writeFerplus(copy, fixtureRows());
    write(path.join(copy, 'fer2013.csv'), '');
    let err = await load('ferplus', { root: copy, on_error: 'skip' }).catch((e: Error) => e);
    expect((err as Error).message).to.equal(
      `${copy}: fer2013.csv is empty; expected fer2013.csv (emotion,pixels,Usage) from the FER2013 release. Restore fer2013.csv as distributed, or set root to the folder that holds the complete FERPlus files.`,
    );
    writeFerplus(
      copy,
      fixtureRows().filter((r) => r.usage !== 'Training'),
    );
    err = await load('ferplus', { root: copy }).catch((e: Error) => e);
    expect((err as Error).message).to.match(
      new RegExp(
        `^${copy}: FERPlus lists no training images; expected its index files to list the training split\\. Check that root names the FERPlus folder as distributed \\(fer2013\\.csv \\+ fer2013new\\.csv vote counts\\)`,
      ),
    );
  });
});
