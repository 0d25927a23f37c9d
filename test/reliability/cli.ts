import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import path from 'node:path';
import { fixtures, projectRoot } from '../helpers.ts';

export const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
export const oneCell = path.join(fixtures, 'recipes', 'rel-one.yaml');

export interface Ran {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the ssfer command line to its end. */
export function ssfer(args: readonly string[], opts: SpawnSyncOptions = {}): Ran {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000, ...opts });
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts the command line; `when(stderr)` decides when to send `signal`. */
export function ssferUntil(args: readonly string[], when: (stderr: string) => boolean, signal: NodeJS.Signals, opts: { cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd ?? projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && when(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('exit', (status, sig) => resolve({ status, signal: sig, stdout, stderr }));
  });
}
