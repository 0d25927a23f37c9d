import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { processAlive } from '../core/lease.ts';

/**
 * A cell id as a folder name, one-to-one: letters, digits and `= . + -` stay, `/` becomes `__`,
 * and every other character (`_` included) becomes `_` and its UTF-8 bytes in hex, so
 * `kappa=iou/dataset=rafdb` → `kappa=iou__dataset=rafdb` and `a_b` → `a_5fb` never meet.
 */
export function cellFolder(id: string): string {
  let out = '';
  for (const ch of id) {
    if (ch === '/') out += '__';
    else if (/[A-Za-z0-9=.+-]/.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * Seed k's folder in a cell's folder: `cells/<cell>/seed-<k>`, holding everything that seed wrote
 * (metrics.json, log, pictures, model, its checkpoints while it runs). A run of a version before
 * seeds kept its one seed in the cell's folder itself: resumed, that folder stays seed 0's.
 */
export function seedFolder(cellDir: string, k: number, resumed: boolean): string {
  const own = path.join(cellDir, `${SEED_FOLDER_PREFIX}${k}`);
  if (resumed && k === 0 && !fs.existsSync(own) && ['metrics.json', 'checkpoints', 'error.json'].some((f) => fs.existsSync(path.join(cellDir, f))))
    return cellDir;
  return own;
}

/** How a seed's folder is named: `seed-<k>`. */
export const SEED_FOLDER_PREFIX = 'seed-';

/** The folder name older versions gave a cell (not one-to-one: `a/b` and `a__b` met); read when resuming their runs. */
export function legacyCellFolder(id: string): string {
  return id.replace(/\//g, '__').replace(/[^A-Za-z0-9=._+-]/g, '_');
}

export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*$/, 'Z');
}

/** Run folders in the order they were made: `…Z`, `…Z-2`, …, `…Z-10` (numbers compared as numbers). */
function byAge(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** The newest run folder of a recipe, or undefined. */
export function latestRunDir(outRoot: string, recipe: string): string | undefined {
  const dir = path.join(outRoot, recipe);
  if (!fs.existsSync(dir)) return undefined;
  const runs = fs
    .readdirSync(dir)
    .filter((d) => fs.existsSync(path.join(dir, d, 'run.json')))
    .sort(byAge);
  return runs.length ? path.join(dir, runs[runs.length - 1]!) : undefined;
}

/**
 * Makes a new run folder under `base`, exclusively: two runs started in the same second (or the
 * same millisecond) get two folders, `<timestamp>` and `<timestamp>-2`, never one.
 */
export function makeRunDir(base: string, now = new Date()): string {
  fs.mkdirSync(base, { recursive: true });
  for (let n = 1; ; n++) {
    const dir = path.join(base, n === 1 ? timestamp(now) : `${timestamp(now)}-${n}`);
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export const LOCK_FILE = 'run.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/**
 * Takes the run folder's lock (`run.lock`: pid, host, start), created exclusively. A lock of a
 * live run is refused with what holds it; a lock of a process of this host that no longer runs
 * is stale and replaced (`note` says so). Returns the function that releases it.
 */
export function lockRunDir(dir: string, note: (text: string) => void): () => void {
  const file = path.join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let held: Partial<LockInfo> = {};
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    } catch {
      // An unreadable lock (a crash while writing it) holds nothing.
    }
    const what = `pid ${held.pid ?? '?'} on ${held.host ?? '?'}, started ${held.started ?? '?'}`;
    if (held.host !== undefined && held.host !== mine.host) {
      throw new UsageError(`${dir} is in use by another run (${what}); wait for it to end, or delete ${file} if that run no longer exists`);
    }
    if (typeof held.pid === 'number' && processAlive(held.pid)) {
      throw new UsageError(`${dir} is in use by another run (${what}); wait for it to end or stop it (kill ${held.pid}), then resume`);
    }
    note(`ssfer: ${dir}: the run that held it (${what}) no longer runs; taking it over`);
    fs.rmSync(file, { force: true });
  }
  return () => {
    try {
      const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
      if (held.pid === mine.pid && held.host === mine.host) fs.rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}

/**
 * Checks `--out` before anything is run: it must be a folder this process can create and write.
 * Missing levels are made one at a time (never through a path that is not a folder).
 */
export function checkOutRoot(outRoot: string): void {
  const fail = (why: string) => new UsageError(`--out ${outRoot}: ${why}; choose a folder you can write (it is created if missing)`);
  const missing: string[] = [];
  let at = path.resolve(outRoot);
  for (;;) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw fail(`cannot read ${at} (${code})`);
      missing.unshift(at);
      const up = path.dirname(at);
      if (up === at) throw fail('no such folder');
      at = up;
      continue;
    }
    if (!stat.isDirectory()) throw fail(at === path.resolve(outRoot) ? 'is a file, not a folder' : `${at} is a file, not a folder`);
    break;
  }
  for (const dir of missing) {
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw fail(`cannot create ${dir} (${code})`);
    }
  }
  const probe = path.join(outRoot, `.ssfer-write-check-${process.pid}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
    fs.rmSync(probe);
  } catch (err) {
    throw fail(`cannot write there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Temporary files an atomic write leaves when killed: `<file>.<pid>.tmp` and `.<file>.<pid>.<hex>.tmp`. */
const TEMPORARY = [/^.+\.(\d+)\.tmp$/, /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/];

/** How long a temporary file of a dead process is left alone (another host may share the folder). */
const TEMPORARY_GRACE_MS = 60_000;

/**
 * Removes the temporary files killed runs left under the results root (model-sized at paper
 * scale): only files named as this project's atomic writes name them, only of processes that no
 * longer run, and only when untouched for a minute. Returns how many and how many bytes.
 */
export function removeStaleTemporaries(outRoot: string, now = Date.now()): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      if (!e.isFile()) continue;
      const pid = TEMPORARY.map((re) => re.exec(e.name)?.[1]).find((p) => p !== undefined);
      if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
      try {
        const stat = fs.statSync(full);
        if (now - stat.mtimeMs < TEMPORARY_GRACE_MS) continue;
        fs.rmSync(full);
        files++;
        bytes += stat.size;
      } catch {
        // gone meanwhile
      }
    }
  };
  walk(outRoot);
  return { files, bytes };
}

/**
 * Each cell's folder name. A resumed run of an older version keeps the folders it wrote under the
 * older names, unless two of its cells met in one of them: then nothing there can be trusted.
 */
export function cellFolders(recipe: { readonly cells: readonly { readonly id: string }[] }, dir: string, resumed: boolean): Map<string, string> {
  const folders = new Map(recipe.cells.map((c) => [c.id, cellFolder(c.id)]));
  if (!resumed) return folders;
  const legacyOwners = new Map<string, string[]>();
  for (const c of recipe.cells) legacyOwners.set(legacyCellFolder(c.id), [...(legacyOwners.get(legacyCellFolder(c.id)) ?? []), c.id]);
  for (const c of recipe.cells) {
    const legacy = legacyCellFolder(c.id);
    if (legacy === folders.get(c.id) || fs.existsSync(path.join(dir, 'cells', folders.get(c.id)!)) || !fs.existsSync(path.join(dir, 'cells', legacy))) continue;
    const owners = legacyOwners.get(legacy)!;
    if (owners.length > 1) {
      throw new UsageError(
        `--resume ${dir}: cells ${owners.map((o) => `'${o}'`).join(' and ')} share the folder cells/${legacy} (an older ssfer wrote it, whose folder names were not one-to-one), so its results cannot be told apart; run without --resume to start a new run`,
      );
    }
    folders.set(c.id, legacy);
  }
  return folders;
}
