/**
 * `ferplus`: FER2013's images with the FERPlus labels, from the two files as distributed:
 *
 *   fer2013.csv      emotion,pixels,Usage — 48×48 grey levels, Usage Training/PublicTest/PrivateTest
 *   fer2013new.csv   Usage,Image name,neutral,…,contempt,unknown,NF — ten annotators' votes,
 *                    one row per fer2013.csv row, in the same order
 *
 * Labels follow the FERPlus authors' "majority" mode: a single vote for an emotion is treated as
 * noise and removed; the emotion with more than half of the remaining votes is the label; a row
 * with no such emotion, or where `unknown` or `NF` (not a face) wins, is left out, as is a row
 * without an image name (FERPlus dropped those images). A tie can never hold more than half, so
 * ties are left out too. Training rows train; PublicTest and PrivateTest are merged into the test
 * split, as the paper does. The 7-class setting also leaves out the contempt rows.
 */
import path from 'node:path';
import { DatasetError, DropCounter, EntryProblem, type IssueLog } from '../../src/data/errors.ts';
import { columnsOf, linesOf, splitCsv, type IndexFile, type IndexLine } from '../../src/data/index-file.ts';
import type { DatasetIndex, IndexEntry } from '../../src/data/load.ts';
import { wholeNumber } from './internal/fields.ts';
import { choice } from '../../src/core/schema.ts';
import { readDatasetFile, realDatasetPlugin, type RealOptions } from './internal/real.ts';
import { EXPRESSIONS_8, classNames } from '../../src/data/expressions.ts';

const ferplusOptions = {
  classes: choice([8, 7], { default: 8, description: 'class setting: 8 with contempt, or 7 (contempt rows left out)' }),
};

type FerplusOptions = RealOptions<typeof ferplusOptions>;

const NAME = { displayName: 'FERPlus', env: 'SSFER_FERPLUS_ROOT' };
/** fer2013new.csv's vote columns, in its order. */
export const VOTE_COLUMNS = ['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF'] as const;
const SIDE = 48;
const SPLIT_OF: Record<string, 'train' | 'test'> = { Training: 'train', PublicTest: 'test', PrivateTest: 'test' };

export type Majority = { readonly label: (typeof VOTE_COLUMNS)[number] } | { readonly drop: string };

/** The FERPlus authors' majority rule on one row of votes (in VOTE_COLUMNS order). */
export function majority(votes: readonly number[]): Majority {
  const kept = votes.map((v) => (v <= 1 ? 0 : v));
  const total = kept.reduce((a, b) => a + b, 0);
  const max = Math.max(...kept);
  if (!(max > total / 2)) return { drop: 'no emotion holds a majority of the votes (FERPlus majority rule)' };
  const winner = VOTE_COLUMNS[kept.indexOf(max)]!;
  if (winner === 'unknown') return { drop: '"unknown" wins the vote' };
  if (winner === 'NF') return { drop: 'voted not a face (NF)' };
  return { label: winner };
}

/** A CSV file's header and data lines (readDatasetFile refuses an empty file). */
function rows(file: IndexFile): { header: IndexLine; data: IndexLine[] } {
  const all = [...linesOf(file)].filter((l) => l.text.trim() !== '');
  return { header: all[0]!, data: all.slice(1) };
}

function header<const K extends string>(file: IndexFile, line: IndexLine, wanted: readonly K[]): { [P in K]: number } {
  const cols = columnsOf(splitCsv(line.text) ?? [], wanted);
  if ('missing' in cols) {
    throw new DatasetError(
      { file: file.path, line: line.line },
      `the header lacks ${cols.missing.join(', ')}`,
      `the columns ${wanted.join(', ')}`,
      'Restore the file as distributed.',
    );
  }
  return cols;
}

/** The 48×48 grey levels of a pixels field, parsed when the image is decoded. */
function greyPixels(text: string): () => Uint8Array {
  return () => {
    const expected = `${SIDE * SIDE} grey levels 0–255 separated by spaces`;
    const parts = text.trim().split(/\s+/);
    if (parts.length !== SIDE * SIDE) throw new EntryProblem('malformed', `the pixels field holds ${parts.length} values`, expected);
    const out = new Uint8Array(parts.length);
    parts.forEach((part, i) => {
      const v = wholeNumber(part);
      if (!(v <= 255)) throw new EntryProblem('malformed', `pixel ${i + 1} is '${part}'`, expected);
      out[i] = v;
    });
    return out;
  };
}

function read(root: string, o: FerplusOptions, issues: IssueLog): DatasetIndex {
  const fer = readDatasetFile(root, ['fer2013.csv'], NAME, 'fer2013.csv (emotion,pixels,Usage) from the FER2013 release');
  const plus = readDatasetFile(root, ['fer2013new.csv'], NAME, 'fer2013new.csv (Usage,Image name,neutral,…,NF) from the FERPlus repository');
  const ferRows = rows(fer);
  const plusRows = rows(plus);
  const fc = header(fer, ferRows.header, ['pixels', 'Usage']);
  const pc = header(plus, plusRows.header, ['Usage', 'Image name', ...VOTE_COLUMNS]);
  if (ferRows.data.length !== plusRows.data.length) {
    throw new DatasetError(
      { file: plus.path },
      `${plusRows.data.length} vote rows for ${ferRows.data.length} images in ${path.basename(fer.path)}`,
      'one vote row per fer2013.csv row, in the same order',
      'Use the fer2013.csv and fer2013new.csv that belong together, both complete.',
    );
  }
  const classes = classNames(o.classes);
  const dropped = new DropCounter();
  const split = { train: [] as IndexEntry[], test: [] as IndexEntry[] };
  ferRows.data.forEach((ferLine, i) => {
    const plusLine = plusRows.data[i]!;
    const ferPlace = { file: fer.path, line: ferLine.line };
    const plusPlace = { file: plus.path, line: plusLine.line };
    const f = splitCsv(ferLine.text);
    if (!f || f.length <= Math.max(fc.pixels, fc.Usage)) {
      issues.report('malformed', ferPlace, `cannot read '${ferLine.text.slice(0, 60)}…'`, 'emotion,pixels,Usage');
      return;
    }
    const usage = f[fc.Usage]!.trim();
    const target = SPLIT_OF[usage];
    if (!target) {
      issues.report('malformed', ferPlace, `Usage '${usage}'`, 'Training, PublicTest or PrivateTest');
      return;
    }
    const p = splitCsv(plusLine.text);
    if (!p || p.length <= Math.max(...Object.values<number>(pc))) {
      issues.report('malformed', plusPlace, `cannot read '${plusLine.text}'`, `Usage,Image name and ${VOTE_COLUMNS.length} vote counts`);
      return;
    }
    if (p[pc.Usage]!.trim() !== usage) {
      issues.report(
        'malformed',
        plusPlace,
        `Usage '${p[pc.Usage]}' differs from ${path.basename(fer.path)}:${ferLine.line} ('${usage}')`,
        'the rows of the two files in the same order',
      );
      return;
    }
    const votes = VOTE_COLUMNS.map((c) => wholeNumber(p[pc[c]]!));
    const bad = votes.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      issues.report(
        'malformed',
        plusPlace,
        `${VOTE_COLUMNS[bad]} votes '${p[pc[VOTE_COLUMNS[bad]!]]}'`,
        'a whole number of votes in each of the ten vote columns',
      );
      return;
    }
    if (p[pc['Image name']]!.trim() === '') {
      dropped.add('no image name in fer2013new.csv (FERPlus dropped the image)');
      return;
    }
    const vote = majority(votes);
    if ('drop' in vote) {
      dropped.add(vote.drop);
      return;
    }
    const label = classes.indexOf(vote.label as (typeof EXPRESSIONS_8)[number]);
    if (label < 0) {
      dropped.add(`${vote.label} (the ${o.classes}-class setting)`);
      return;
    }
    const pixels = f[fc.pixels]!;
    split[target].push({ source: { width: SIDE, height: SIDE, channels: 1, pixels: greyPixels(pixels) }, box: null, label, place: ferPlace });
  });
  return { classes, ...split, digests: [fer.digest, plus.digest], notes: dropped.notes() };
}

export default realDatasetPlugin({
  name: 'ferplus',
  ...NAME,
  layout: 'fer2013.csv + fer2013new.csv vote counts',
  options: ferplusOptions,
  setting: (o) => ({ display: o.classes === 8 ? 'FERPlus' : `FERPlus-${o.classes}`, classes: classNames(o.classes), trainSize: 28709, testSize: 7178 }),
  read,
});
