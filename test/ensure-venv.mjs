// Run before the tests: the Python tools the tests check against, in the project's virtual
// environment (.venv). The MLflow tests talk to a real tracking server; the export tests load the
// exported ONNX files in Python's onnxruntime and check them with the onnx package (its checker
// and reference evaluator). Creates .venv (python3 -m venv) and pip-installs what is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const venv = path.join(root, '.venv');
const python = path.join(venv, 'bin', 'python');

/** pip name → whether it is already usable. */
const wanted = {
  // An `mlflow` on PATH serves as well (test/tracking/server.ts looks there second).
  mlflow: () => fs.existsSync(path.join(venv, 'bin', 'mlflow')) || spawnSync('mlflow', ['--version'], { stdio: 'ignore' }).status === 0,
  onnxruntime: () => imports('onnxruntime'),
  onnx: () => imports('onnx'),
};

function imports(module) {
  return fs.existsSync(python) && spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

const missing = Object.keys(wanted).filter((name) => !wanted[name]());
if (missing.length > 0) {
  console.error(`test setup: installing ${missing.join(', ')} into .venv (python3 -m venv .venv && .venv/bin/pip install ${missing.join(' ')})`);
  try {
    if (!fs.existsSync(python)) execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '-q', ...missing], { stdio: 'inherit' });
  } catch (err) {
    console.error(`test setup: could not install ${missing.join(', ')} (${err.message.split('\n')[0]}); on Debian/Ubuntu install python3-venv first`);
    process.exit(1);
  }
}
