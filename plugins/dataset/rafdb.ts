/**
 * `rafdb`: RAF-DB basic (single-label) as distributed:
 *
 *   EmoLabel/list_patition_label.txt           "train_00001.jpg 5" (RAF-DB's own spelling)
 *   Image/aligned/train_00001_aligned.jpg      layout: aligned (the 100×100 aligned faces)
 *   Image/original/train_00001.jpg             layout: original, with
 *   Annotation/boundingbox/train_00001_boundingbox.txt   "x1 y1 x2 y2" in original pixels
 *
 * The file name's prefix says the split. Aligned faces fill their image, so their box is the
 * whole image; original images keep their annotated box, scaled with the image.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IssueLog } from '../../src/data/errors.ts';
import { linesOf } from '../../src/data/index-file.ts';
import type { DatasetIndex, IndexEntry } from '../../src/data/load.ts';
import { boxFromCorners, CORNERS_EXPECTED, wholeNumber } from './internal/fields.ts';
import { choice, Type } from '../../src/core/schema.ts';
import { readDatasetFile, realDatasetPlugin, type RealOptions } from './internal/real.ts';
import { EXPRESSIONS_7, fromRafdbLabel } from '../../src/data/expressions.ts';

const rafdbOptions = {
  classes: choice([7], { default: 7, description: 'class setting (RAF-DB basic has the 7 basic expressions)' }),
  // No schema default: the option would then stand in every cell's dataset slot, whose hash
  // seeds the label split (src/pipeline/cell-data.ts), and the labels drawn so far would change.
  layout: Type.Optional(
    choice(['aligned', 'original'], {
      description: 'aligned (when not set): Image/aligned/ faces, the box is the whole image; original: Image/original/ with the annotated face boxes',
    }),
  ),
};

type RafdbOptions = RealOptions<typeof rafdbOptions>;

const NAME = { displayName: 'RAF-DB', env: 'SSFER_RAFDB_ROOT' };
const LABELS = '1–7 (1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral)';

function readBox(file: string, place: { file: string; line: number }, issues: IssueLog): IndexEntry['box'] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    issues.report('missing', place, `face box file ${file} not found`, 'Annotation/boundingbox/<name>_boundingbox.txt for every image of the original layout');
    return undefined;
  }
  const box = boxFromCorners(text.trim().split(/\s+/));
  if (!box) issues.report('malformed', { file, line: 1 }, `cannot read a face box from '${text.trim()}'`, CORNERS_EXPECTED);
  return box ?? undefined;
}

function read(root: string, o: RafdbOptions, issues: IssueLog): DatasetIndex {
  const list = readDatasetFile(
    root,
    ['EmoLabel/list_patition_label.txt'],
    NAME,
    'EmoLabel/list_patition_label.txt (spelled as RAF-DB spells it) with lines such as "train_00001.jpg 5"',
  );
  const train: IndexEntry[] = [];
  const test: IndexEntry[] = [];
  for (const { line, text } of linesOf(list)) {
    if (!text.trim()) continue;
    const place = { file: list.path, line };
    const m = /^\s*((train|test)_\d+)\.(\w+)\s+(\S+)\s*$/.exec(text);
    if (!m) {
      issues.report('malformed', place, `cannot read '${text}'`, 'an image name and a label, such as "train_00001.jpg 5" or "test_0001.jpg 1"');
      continue;
    }
    const [, stem, split, ext, labelText] = m as unknown as [string, string, 'train' | 'test', string, string];
    const label = wholeNumber(labelText);
    if (!(label >= 1 && label <= 7)) {
      issues.report('label', place, `label '${labelText}' is not a RAF-DB basic label`, LABELS);
      continue;
    }
    let entry: IndexEntry;
    if (o.layout !== 'original') {
      entry = { source: { file: path.join(root, 'Image', 'aligned', `${stem}_aligned.${ext}`) }, box: null, label: fromRafdbLabel(label), place };
    } else {
      const box = readBox(path.join(root, 'Annotation', 'boundingbox', `${stem}_boundingbox.txt`), place, issues);
      if (box === undefined) continue;
      entry = { source: { file: path.join(root, 'Image', 'original', `${stem}.${ext}`) }, box, label: fromRafdbLabel(label), place };
    }
    (split === 'train' ? train : test).push(entry);
  }
  return { classes: EXPRESSIONS_7, train, test, digests: [list.digest], notes: [] };
}

export default realDatasetPlugin({
  name: 'rafdb',
  ...NAME,
  layout: 'EmoLabel/list_patition_label.txt + Image/aligned/, or Image/original/ with Annotation/boundingbox/',
  options: rafdbOptions,
  setting: () => ({ display: 'RAF-DB', classes: EXPRESSIONS_7, trainSize: 12271, testSize: 3068 }),
  read,
});
