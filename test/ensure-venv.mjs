// Run before the tests: the MLflow tests talk to a real tracking server, started from the
// project's virtual environment. Creates it (python3 -m venv .venv; pip install mlflow) when
// neither it nor an `mlflow` on PATH exists.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const venvMlflow = path.join(root, '.venv', 'bin', 'mlflow');
const onPath = spawnSync('mlflow', ['--version'], { stdio: 'ignore' }).status === 0;
if (!fs.existsSync(venvMlflow) && !onPath) {
  console.error('test setup: installing MLflow into .venv for the tracking tests (python3 -m venv .venv && .venv/bin/pip install mlflow)');
  try {
    execFileSync('python3', ['-m', 'venv', path.join(root, '.venv')], { stdio: 'inherit' });
    execFileSync(path.join(root, '.venv', 'bin', 'pip'), ['install', '-q', 'mlflow'], { stdio: 'inherit' });
  } catch (err) {
    console.error(`test setup: could not install MLflow (${err.message.split('\n')[0]}); on Debian/Ubuntu install python3-venv first`);
    process.exit(1);
  }
}
