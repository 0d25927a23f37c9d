import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers.ts';

/** The project's .venv Python, which the test setup (test/ensure-venv.mjs) gives onnx and onnxruntime. */
export function venvPython(): string {
  const python = path.join(projectRoot, '.venv', 'bin', 'python');
  if (!fs.existsSync(python))
    throw new Error('no .venv/bin/python: run `node test/ensure-venv.mjs` (npm test does) to install onnx and onnxruntime into .venv');
  return python;
}

/** Runs test/export/onnx_check.py and parses its JSON answer. */
export function onnxCheck(command: 'describe' | 'run', ...args: string[]): any {
  const r = spawnSync(venvPython(), [path.join(projectRoot, 'test', 'export', 'onnx_check.py'), command, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`onnx_check.py ${command} failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
