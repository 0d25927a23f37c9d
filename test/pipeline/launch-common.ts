import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { fixtures, projectRoot } from '../helpers.ts';

/** Four cells sharing one MAE pre-training, each long enough to be killed in the middle. */
export const fourCells = path.join(fixtures, 'recipes', 'launch-four.yaml');
const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
/** One thread per unit everywhere, so every launcher sums in the same order. */
export const ONE_THREAD = { SSFER_NATIVE_THREADS: '1', OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function ssfer(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeout = 600_000): Ran {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout, env: { ...process.env, ...ONE_THREAD, ...env } });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts the command line; resolves when it ends. `during` runs while it runs (it may kill things). */
export function ssferWhile(
  args: readonly string[],
  during: (child: { pid: number; stderr: () => string }) => Promise<void>,
  env: NodeJS.ProcessEnv = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...ONE_THREAD, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    during({ pid: child.pid!, stderr: () => stderr })
      .then(() => done)
      .then((status) => resolve({ status, stdout, stderr }), reject);
  });
}

/**
 * The run folder under an --out root once there is one, else null: for polling while the run
 * starts (the recipe's folder appears a moment before the run folder inside it).
 */
export function runDirIfAny(out: string, recipe = 'launch-four'): string | null {
  const base = path.join(out, recipe);
  const runs = fs.existsSync(base) ? fs.readdirSync(base) : [];
  return runs.length > 0 ? runDir(out, recipe) : null;
}

/** The one run folder under an --out root. */
export function runDir(out: string, recipe = 'launch-four'): string {
  const base = path.join(out, recipe);
  const runs = fs.readdirSync(base);
  expect(runs, 'one run folder').to.have.length(1);
  return path.join(base, runs[0]!);
}

export function unitDirs(dir: string): string[] {
  const cells = path.join(dir, 'cells');
  if (!fs.existsSync(cells)) return [];
  return fs
    .readdirSync(cells)
    .sort()
    .map((c) => path.join(cells, c, 'seed-0'));
}

/** Polls until `test` gives a value (or the time is up: an error). */
export async function until<T>(what: string, test: () => T | null | undefined | false, ms = 240_000, every = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = test();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A unit whose supervised stage has saved an epoch checkpoint and that a process holds: its folder and the holder's pid. */
export function unitInTraining(dir: string): { unit: string; pid: number } | null {
  if (!fs.existsSync(path.join(dir, 'cells'))) return null;
  for (const unit of unitDirs(dir)) {
    const lock = path.join(unit, 'unit.lock');
    if (!fs.existsSync(path.join(unit, 'checkpoints', 'supervised.ckpt')) || !fs.existsSync(lock)) continue;
    try {
      return { unit, pid: (JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number }).pid };
    } catch {
      // being written
    }
  }
  return null;
}

/**
 * The numbers two runs of the same recipe must share, unit by unit: the table's cells, and each
 * unit's accuracy, confusion matrix, health and its log of every training step.
 */
export function expectSameNumbers(got: string, want: string): void {
  const table = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'table.json'), 'utf8')) as { cells: unknown[] };
  expect(table(got).cells).to.deep.equal(table(want).cells);
  const a = unitDirs(got);
  const b = unitDirs(want);
  expect(a.map((u) => path.relative(got, u))).to.deep.equal(b.map((u) => path.relative(want, u)));
  a.forEach((u, i) => {
    const m = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'metrics.json'), 'utf8'));
    for (const key of ['accuracy', 'accuracy_raw', 'confusion', 'health', 'steps', 'semi_epochs'])
      expect(m(u)[key], `${u}: ${key}`).to.deep.equal(m(b[i]!)[key]);
    expect(fs.readFileSync(path.join(u, 'log.jsonl'), 'utf8'), `${u}: log.jsonl`).to.equal(fs.readFileSync(path.join(b[i]!, 'log.jsonl'), 'utf8'));
  });
}

export function attempts(unit: string): { event: string; outcome?: string; pid?: number }[] {
  return fs
    .readFileSync(path.join(unit, 'attempts.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
