import fs from 'node:fs';
import path from 'node:path';

/** A cell id as a folder name: `kappa=iou/dataset=rafdb` → `kappa=iou__dataset=rafdb`. */
export function cellFolder(id: string): string {
  return id.replace(/\//g, '__').replace(/[^A-Za-z0-9=._+-]/g, '_');
}

export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*$/, 'Z');
}

/** The newest run folder of a recipe, or undefined. */
export function latestRunDir(outRoot: string, recipe: string): string | undefined {
  const dir = path.join(outRoot, recipe);
  if (!fs.existsSync(dir)) return undefined;
  const runs = fs
    .readdirSync(dir)
    .filter((d) => fs.existsSync(path.join(dir, d, 'run.json')))
    .sort();
  return runs.length ? path.join(dir, runs[runs.length - 1]!) : undefined;
}
