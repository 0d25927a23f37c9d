import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { projectRoot, tempDir } from '../helpers.ts';

/** The mlflow executable: the project's .venv first, then PATH. Fails with the install command. */
export function mlflowExecutable(): string {
  const local = path.join(projectRoot, '.venv', 'bin', 'mlflow');
  if (fs.existsSync(local)) return local;
  const which = spawnSync('sh', ['-c', 'command -v mlflow'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(
    'no mlflow executable: the MLflow tests need a real tracking server; install it with `python3 -m venv .venv && .venv/bin/pip install mlflow` (CI does)',
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface MlflowServer {
  uri: string;
  port: number;
  /** Its SQLite store and artifact folder: a server started again on them has every run of this one. */
  dir: string;
  stop(): Promise<void>;
}

/**
 * Starts `mlflow server` on a free port with a temporary SQLite store and artifact folder, or on
 * a given port and folder (a server that comes back).
 */
export async function startMlflow(at: { port?: number; dir?: string } = {}): Promise<MlflowServer> {
  const exe = mlflowExecutable();
  const dir = at.dir ?? tempDir('ssfer-mlflow-');
  const port = at.port ?? (await freePort());
  const uri = `http://127.0.0.1:${port}`;
  // The server's output goes to a file, not a pipe: a test that runs ssfer with spawnSync blocks
  // this process's event loop, and a pipe nobody drains fills up and stalls the server mid-request.
  const logFile = path.join(dir, 'server.log');
  const logFd = fs.openSync(logFile, 'a');
  const output = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const child: ChildProcess = spawn(
    exe,
    [
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
      '--backend-store-uri',
      `sqlite:///${path.join(dir, 'mlflow.db')}`,
      '--artifacts-destination',
      path.join(dir, 'artifacts'),
      '--serve-artifacts',
    ],
    { cwd: dir, stdio: ['ignore', logFd, logFd], env: { ...process.env, MLFLOW_TRACKING_URI: '', DO_NOT_TRACK: 'true', MLFLOW_DISABLE_TELEMETRY: 'true' } },
  );
  fs.closeSync(logFd);
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) throw new Error(`mlflow server exited before it was ready:\n${output().slice(-2000)}`);
    try {
      const res = await fetch(`${uri}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mlflow server did not answer /health within 90 s:\n${output().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    uri,
    port,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
