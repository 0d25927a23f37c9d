/**
 * `image-folder`: any labelled image set laid out by split and class:
 *
 *   <root>/train/<class>/*.jpg|jpeg|png|webp
 *   <root>/test/<class>/*.jpg|jpeg|png|webp
 *   <root>/<boxes>   optional CSV "path,x1,y1,x2,y2" (path relative to root, pixel corners in
 *                    that image; a header line is allowed)
 *
 * Classes are the sorted names of the class folders under train/, unless `classes` lists them
 * (that order is the label order). Other files (and hidden ones) are ignored. An image without a
 * row in the boxes file, or every image when there is none, gets the whole image as its box.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatasetError, type IssueLog } from '../../src/data/errors.ts';
import { linesOf, readIndexFile, splitCsv } from '../../src/data/index-file.ts';
import type { Box } from '../../src/data/decode.ts';
import type { DatasetIndex, IndexEntry } from '../../src/data/load.ts';
import { boxFromCorners, CORNERS_EXPECTED } from './internal/fields.ts';
import { nullable, Type } from '../../src/core/schema.ts';
import { pointAtNearby, realDatasetPlugin, type RealOptions } from './internal/real.ts';

const imageFolderOptions = {
  classes: Type.Unsafe<string[] | null>({
    type: ['array', 'null'],
    items: Type.String({ minLength: 1 }),
    minItems: 2,
    uniqueItems: true,
    default: null,
    description: 'class folder names in label order; null: the sorted folder names under train/',
  }),
  boxes: nullable(Type.String(), { default: null, description: 'CSV of face boxes "path,x1,y1,x2,y2" relative to root; null: every box is the whole image' }),
};

type ImageFolderOptions = RealOptions<typeof imageFolderOptions>;

const IMAGE = /\.(jpe?g|png|webp)$/i;
const SPLITS = ['train', 'test'] as const;
const LAYOUT = '<root>/train/<class>/*.jpg|png|webp and <root>/test/<class>/…';

function subfolders(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

/** The boxes file as relative image path (with '/') → box. */
function readBoxes(root: string, name: string, issues: IssueLog): { boxes: Map<string, { box: Box; line: number }>; file: string; digest: string } {
  const file = readIndexFile(path.resolve(root, name), {
    expected: 'a CSV file of lines "path,x1,y1,x2,y2"',
    fix: 'Fix the boxes option (relative to root) or set it to null.',
  });
  const boxes = new Map<string, { box: Box; line: number }>();
  for (const { line, text } of linesOf(file)) {
    if (!text.trim()) continue;
    const f = splitCsv(text)?.map((v) => v.trim());
    if (line === 1 && f && f.length === 5 && !Number.isFinite(Number(f[1]))) continue; // a header
    const box = f && f.length === 5 && f[0] ? boxFromCorners(f.slice(1)) : null;
    if (!box) {
      issues.report('malformed', { file: file.path, line }, `cannot read '${text}'`, `path,x1,y1,x2,y2 with ${CORNERS_EXPECTED}`);
      continue;
    }
    boxes.set(f![0]!.replace(/\\/g, '/').replace(/^\.\//, ''), { box, line });
  }
  return { boxes, file: file.path, digest: file.digest };
}

function read(root: string, o: ImageFolderOptions, issues: IssueLog): DatasetIndex {
  for (const split of SPLITS) {
    const dir = path.join(root, split);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      const fix = pointAtNearby(root, [split]) ?? 'Arrange the images by split and class, or set root to the folder that holds train/ and test/.';
      throw new DatasetError({ file: dir }, 'folder not found', `${split}/ with one folder per class (${LAYOUT})`, fix);
    }
  }
  const classes = o.classes ?? subfolders(path.join(root, 'train'));
  if (classes.length < 2) {
    throw new DatasetError(
      { file: path.join(root, 'train') },
      `${classes.length} class folders`,
      'at least two class folders under train/',
      'Add a folder per class, or list them in the classes option.',
    );
  }
  const boxFile = o.boxes ? readBoxes(root, o.boxes, issues) : undefined;
  const used = new Set<string>();
  const split = { train: [] as IndexEntry[], test: [] as IndexEntry[] };
  for (const s of SPLITS) {
    for (const name of subfolders(path.join(root, s))) {
      const dir = path.join(root, s, name);
      const label = classes.indexOf(name);
      if (label < 0) {
        issues.report('label', { file: dir }, `class folder '${name}' is not one of the classes`, `one of ${classes.join(', ')}`);
        continue;
      }
      for (const file of fs
        .readdirSync(dir)
        .filter((f) => IMAGE.test(f) && !f.startsWith('.'))
        .sort()) {
        const rel = `${s}/${name}/${file}`;
        const annotated = boxFile?.boxes.get(rel);
        if (annotated) used.add(rel);
        split[s].push({
          source: { file: path.join(dir, file) },
          box: annotated?.box ?? null,
          label,
          place: annotated ? { file: boxFile!.file, line: annotated.line } : { file: path.join(dir, file) },
        });
      }
    }
  }
  for (const [rel, { line }] of boxFile?.boxes ?? []) {
    if (!used.has(rel))
      issues.report('missing', { file: boxFile!.file, line }, `no image ${rel} under ${root}`, 'the path, relative to root, of an image under train/ or test/');
  }
  return { classes, ...split, digests: boxFile ? [boxFile.digest] : [], notes: [] };
}

export default realDatasetPlugin({
  name: 'image-folder',
  displayName: 'Image folder',
  layout: LAYOUT,
  description: `Any labelled image set laid out by split and class (${LAYOUT}), with optional face boxes`,
  options: imageFolderOptions,
  setting: (o) => ({ display: path.basename(path.resolve(o.root ?? '.')) || 'Image folder', classes: o.classes ?? [], trainSize: 0, testSize: 0 }),
  read,
});
