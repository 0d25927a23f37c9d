/**
 * `affectnet`: AffectNet's manually annotated part as distributed:
 *
 *   training.csv, validation.csv    (in the root or in Manually_Annotated_file_lists/)
 *       subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal
 *   Manually_Annotated_Images/<subDirectory_filePath>
 *
 * Expression ids 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt;
 * 8 None, 9 Uncertain and 10 Non-Face are not expressions and are left out, and the 7-class
 * setting leaves out contempt too. validation.csv is the test split, as in the paper. The face
 * box comes from the face_* columns. A header line is read by its column names, in any order; a
 * file without one is read in the column order above.
 */
import path from 'node:path';
import { DatasetError, DropCounter, type IssueLog } from '../../src/data/errors.ts';
import { columnsOf, linesOf, splitCsv, type IndexFile } from '../../src/data/index-file.ts';
import type { DatasetIndex, IndexEntry } from '../../src/data/load.ts';
import { boxFromSize, wholeNumber } from './internal/fields.ts';
import { choice } from '../../src/core/schema.ts';
import { readDatasetFile, realDatasetPlugin, type RealOptions } from './internal/real.ts';
import { classNames, type Expression } from '../../src/data/expressions.ts';

const affectnetOptions = {
  classes: choice([7, 8], { default: 7, description: 'class setting: 7 basic expressions, or 8 with contempt' }),
};

type AffectnetOptions = RealOptions<typeof affectnetOptions>;

const NAME = { displayName: 'AffectNet', env: 'SSFER_AFFECTNET_ROOT' };
const COLUMNS = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'facial_landmarks', 'expression', 'valence', 'arousal'] as const;
/** The columns this loader reads. */
const READ = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'expression'] as const;
/** AffectNet's expression ids 0–7, by name. */
export const AFFECTNET_EXPRESSIONS: readonly Expression[] = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];
const NOT_EXPRESSIONS: Record<number, string> = { 8: 'None', 9: 'Uncertain', 10: 'Non-Face' };
const IDS = '0–7 (0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt) or 8–10 (None, Uncertain, Non-Face; left out)';

function listFile(root: string, name: string): IndexFile {
  return readDatasetFile(
    root,
    [`Manually_Annotated_file_lists/${name}`, name],
    NAME,
    `${name} (in the root or in Manually_Annotated_file_lists/) with the columns ${COLUMNS.join(',')}`,
  );
}

function readList(file: IndexFile, root: string, classes: readonly Expression[], issues: IssueLog, dropped: DropCounter): IndexEntry[] {
  const lines = [...linesOf(file)].filter((l) => l.text.trim() !== '');
  const first = splitCsv(lines[0]?.text ?? '') ?? [];
  // A header is read by its names, in whatever order the columns stand.
  const names = first.map((f) => f.trim().toLowerCase());
  const hasHeader = COLUMNS.some((c) => names.includes(c.toLowerCase()));
  const named = columnsOf(first, READ);
  if (hasHeader && 'missing' in named) {
    throw new DatasetError(
      { file: file.path, line: lines[0]!.line },
      `the header lacks ${named.missing.join(', ')}`,
      `a header naming ${READ.join(', ')} (in any order)`,
      'Restore the file as distributed.',
    );
  }
  const col =
    hasHeader && !('missing' in named) ? named : (Object.fromEntries(READ.map((c) => [c, COLUMNS.indexOf(c)])) as { [K in (typeof READ)[number]]: number });
  const last = Math.max(col.subDirectory_filePath, col.face_x, col.face_y, col.face_width, col.face_height, col.expression);
  const entries: IndexEntry[] = [];
  for (const { line, text } of hasHeader ? lines.slice(1) : lines) {
    const place = { file: file.path, line };
    const f = splitCsv(text);
    if (!f || f.length <= last || f[col.subDirectory_filePath]!.trim() === '') {
      issues.report('malformed', place, `cannot read '${text.slice(0, 80)}'`, `the columns ${COLUMNS.join(',')}`);
      continue;
    }
    const id = wholeNumber(f[col.expression]!);
    if (!(id >= 0 && id <= 10)) {
      issues.report('label', place, `expression '${f[col.expression]}' is not an AffectNet expression id`, IDS);
      continue;
    }
    if (id in NOT_EXPRESSIONS) {
      dropped.add(`expression ${id} (${NOT_EXPRESSIONS[id]}) is not an expression`);
      continue;
    }
    const label = classes.indexOf(AFFECTNET_EXPRESSIONS[id]!);
    if (label < 0) {
      dropped.add(`${AFFECTNET_EXPRESSIONS[id]} (the ${classes.length}-class setting)`);
      continue;
    }
    const box = boxFromSize(f[col.face_x]!, f[col.face_y]!, f[col.face_width]!, f[col.face_height]!);
    if (!box) {
      issues.report(
        'malformed',
        place,
        `face box '${[col.face_x, col.face_y, col.face_width, col.face_height].map((c) => f[c]).join(',')}'`,
        'face_x, face_y, face_width, face_height as numbers with a positive width and height',
      );
      continue;
    }
    entries.push({ source: { file: path.join(root, 'Manually_Annotated_Images', f[col.subDirectory_filePath]!.trim()) }, box, label, place });
  }
  return entries;
}

function read(root: string, o: AffectnetOptions, issues: IssueLog): DatasetIndex {
  const classes = classNames(o.classes);
  const training = listFile(root, 'training.csv');
  const validation = listFile(root, 'validation.csv');
  const dropped = new DropCounter();
  const train = readList(training, root, classes, issues, dropped);
  const test = readList(validation, root, classes, issues, dropped);
  return { classes, train, test, digests: [training.digest, validation.digest], notes: dropped.notes() };
}

export default realDatasetPlugin({
  name: 'affectnet',
  ...NAME,
  layout: 'the official training/validation CSV files with face boxes',
  options: affectnetOptions,
  // AffectNet is always named with its class setting
  setting: (o) => ({
    display: `AffectNet-${o.classes}`,
    classes: classNames(o.classes),
    trainSize: o.classes === 7 ? 283901 : 287651,
    testSize: o.classes === 7 ? 3500 : 4000,
  }),
  read,
});
