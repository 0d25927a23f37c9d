/**
 * `adience`: the Adience benchmark (gender and age group) as distributed:
 *
 *   fold_0_data.txt … fold_4_data.txt   tab-separated: user_id, original_image, face_id, age,
 *                                       gender, x, y, dx, dy, tilt_ang, fiducial_yaw_angle, fiducial_score
 *   aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>     layout: aligned
 *   faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>    layout: faces
 *
 * The benchmark is evaluated by 5-fold cross-validation on its official, subject-exclusive folds,
 * so every image goes to the training split with its fold (Split.folds) and the test split is
 * empty. Both image folders hold face crops; the x, y, dx, dy columns refer to the original
 * photographs, which are not among them, so the box is the whole image.
 *
 * Gender: f and m; u or empty is left out. Age: the eight benchmark groups. Besides the eight
 * ranges, the files hold single ages ("35"), odd ranges ("(8, 23)", "(27, 32)") and "None". A
 * range is taken at its midpoint, and an age (or midpoint) goes to the group that contains it,
 * else to the nearest group, the older one when two are equally near: "(8, 12)" → 8-13,
 * "(60, 100)" → 60-, "(8, 23)" → 15-20, "(38, 48)" → 38-43, "(27, 32)" → 25-32, "3" → 4-6,
 * "35" → 38-43, "57" → 60-. "None" or an empty age is left out and counted.
 */
import path from 'node:path';
import { DatasetError, DropCounter, type IssueLog } from '../../src/data/errors.ts';
import { columnsOf, linesOf } from '../../src/data/index-file.ts';
import type { DatasetIndex, IndexEntry } from '../../src/data/load.ts';
import { choice, Type } from '../../src/core/schema.ts';
import { readDatasetFile, realDatasetPlugin, type RealOptions } from './internal/real.ts';

const adienceOptions = {
  task: choice(['gender', 'age'], { default: 'gender', description: 'gender (female, male) or age (the 8 benchmark groups)' }),
  // no schema default, as for rafdb's layout: it would change the labels drawn so far
  layout: Type.Optional(
    choice(['aligned', 'faces'], {
      description: 'aligned (when not set): aligned/…/landmark_aligned_face.* crops; faces: faces/…/coarse_tilt_aligned_face.* crops',
    }),
  ),
};

type AdienceOptions = RealOptions<typeof adienceOptions>;

const NAME = { displayName: 'Adience', env: 'SSFER_ADIENCE_ROOT' };
const FOLDS = 5;
const COLUMNS = ['user_id', 'original_image', 'face_id', 'age', 'gender'] as const;
export const GENDERS = ['female', 'male'] as const;
const GENDER_CODES: Record<string, number> = { f: 0, m: 1 };

/** The benchmark's eight age groups, youngest first (upper bound inclusive). */
const AGE_BOUNDS: readonly (readonly [number, number])[] = [
  [0, 2],
  [4, 6],
  [8, 13],
  [15, 20],
  [25, 32],
  [38, 43],
  [48, 53],
  [60, Infinity],
];
export const AGE_GROUPS = AGE_BOUNDS.map(([lo, hi]) => (hi === Infinity ? `${lo}-` : `${lo}-${hi}`));

/** Index of the age group an Adience age field belongs to; 'none' for "None" or empty; null if unreadable. */
export function ageGroup(text: string): number | 'none' | null {
  const t = text.trim();
  if (t === '' || t === 'None') return 'none';
  const range = /^\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
  let age: number;
  if (range && Number(range[1]) <= Number(range[2])) age = (Number(range[1]) + Number(range[2])) / 2;
  else if (/^\d+$/.test(t)) age = Number(t);
  else return null;
  let best = 0;
  let bestDistance = Infinity;
  AGE_BOUNDS.forEach(([lo, hi], g) => {
    const d = Math.max(lo - age, 0, age - hi);
    if (d <= bestDistance) {
      best = g;
      bestDistance = d;
    }
  });
  return best;
}

function read(root: string, o: AdienceOptions, issues: IssueLog): DatasetIndex {
  const train: IndexEntry[] = [];
  const digests: string[] = [];
  const dropped = new DropCounter();
  const [folder, prefix] = o.layout === 'faces' ? ['faces', 'coarse_tilt_aligned_face'] : ['aligned', 'landmark_aligned_face'];
  for (let fold = 0; fold < FOLDS; fold++) {
    const file = readDatasetFile(
      root,
      [`fold_${fold}_data.txt`],
      NAME,
      `fold_0_data.txt … fold_${FOLDS - 1}_data.txt (tab-separated, with the columns ${COLUMNS.join(', ')}, …)`,
    );
    digests.push(file.digest);
    const lines = [...linesOf(file)].filter((l) => l.text.trim() !== '');
    const col = columnsOf(lines[0]?.text.split('\t') ?? [], COLUMNS);
    if ('missing' in col) {
      throw new DatasetError(
        { file: file.path, line: lines[0]?.line ?? 1 },
        `the header lacks ${col.missing.join(', ')}`,
        `a tab-separated header with ${COLUMNS.join(', ')}`,
        'Restore the fold file as distributed.',
      );
    }
    const last = Math.max(...Object.values<number>(col));
    for (const { line, text } of lines.slice(1)) {
      const place = { file: file.path, line };
      const f = text.split('\t').map((v) => v.trim());
      if (f.length <= last || !f[col.user_id] || !f[col.original_image] || !f[col.face_id]) {
        issues.report(
          'malformed',
          place,
          `cannot read '${text.slice(0, 80)}'`,
          `tab-separated ${COLUMNS.join(', ')}, … with user_id, original_image and face_id set`,
        );
        continue;
      }
      let label: number;
      if (o.task === 'gender') {
        const g = f[col.gender]!;
        if (g === '' || g === 'u') {
          dropped.add(g === '' ? 'no gender given' : 'gender u (unknown)');
          continue;
        }
        if (!(g in GENDER_CODES)) {
          issues.report('label', place, `gender '${g}' is not an Adience gender`, 'f or m (u and empty are left out)');
          continue;
        }
        label = GENDER_CODES[g]!;
      } else {
        const group = ageGroup(f[col.age]!);
        if (group === 'none') {
          dropped.add('no age given (None)');
          continue;
        }
        if (group === null) {
          issues.report('label', place, `age '${f[col.age]}' cannot be read`, 'a range such as "(25, 32)", a single age such as "35", or None');
          continue;
        }
        label = group;
      }
      const image = path.join(root, folder, f[col.user_id]!, `${prefix}.${f[col.face_id]}.${f[col.original_image]}`);
      train.push({ source: { file: image }, box: null, label, fold, place });
    }
  }
  const classes = o.task === 'gender' ? GENDERS : AGE_GROUPS;
  return { classes, train, test: [], foldsOnly: true, digests, notes: dropped.notes() };
}

export default realDatasetPlugin({
  name: 'adience',
  ...NAME,
  layout: 'fold_0_data.txt … fold_4_data.txt + aligned/ (or faces/) face crops; 5 official folds',
  options: adienceOptions,
  // Table 9 trains on 4 of the 5 folds with 8,824 (gender) and 7,878 (age) labels at 100 %,
  // so the benchmark holds about 11,030 and 9,848 labelled faces.
  setting: (o) => ({
    display: `Adience (${o.task})`,
    classes: o.task === 'gender' ? GENDERS : AGE_GROUPS,
    trainSize: o.task === 'gender' ? 11030 : 9848,
    testSize: 0,
    folds: FOLDS,
  }),
  read,
});
