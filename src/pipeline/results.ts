import fs from 'node:fs';
import path from 'node:path';

/** Writes a file so that readers see the old content or the new one, never a half-written file. */
export function writeAtomic(file: string, content: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function writeJson(file: string, value: unknown): void {
  writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

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
