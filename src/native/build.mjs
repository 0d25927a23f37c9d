#!/usr/bin/env node
// Builds the native kernels addon with node-gyp against the headers of the running Node
// installation, so nothing is downloaded. Plain JavaScript on purpose: it runs from the
// `install` script, before anything else of the project can be relied on.
//
//   node src/native/build.mjs               build, fail loudly (npm run build:native)
//   node src/native/build.mjs --if-possible build, but never fail (npm install): one line on why not
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ifPossible = process.argv.includes('--if-possible');
const require = createRequire(import.meta.url);
const addonPath = path.join(here, 'build', 'Release', 'ssfer_native.node');

function give(reason, detail) {
  if (ifPossible) {
    console.log(`ssfer: native kernels not built (${reason}); the wasm/cpu backends will be used`);
    process.exit(0);
  }
  console.error(`ssfer: native build failed: ${reason}`);
  if (detail) console.error(detail);
  process.exit(1);
}

function findNodeGyp() {
  const candidates = [];
  // npm points lifecycle scripts at its bundled copy.
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency; fall through to npm's bundled copy
  }
  if (process.env.npm_execpath) {
    candidates.push(path.resolve(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

function has(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

// Links an empty program against OpenBLAS: the same search the real link will do.
function canLinkOpenBlas(cxx) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ssfer-blas-'));
  try {
    const r = spawnSync(cxx, ['-x', 'c++', '-', '-o', path.join(dir, 'probe'), '-lopenblas'], {
      input: 'extern "C" void cblas_sgemm(); int main() { return cblas_sgemm == nullptr; }\n',
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    return r.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Vector extensions (AVX2/FMA, then AVX-512) are enabled only when the building machine has them:
// the addon is built where it runs (npm install), so that is the machine that executes it.
// SSFER_NATIVE_SIMD=0 or 1 caps them, e.g. for a build shared with older machines.
function simdFlag() {
  if (process.env.SSFER_NATIVE_SIMD === '0') return 0;
  if (process.arch !== 'x64') return 0;
  try {
    const flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .match(/^flags\s*:(.*)$/m)?.[1]
        .split(/\s+/) ?? [];
    if (!flags.includes('avx2') || !flags.includes('fma')) return 0;
    if (process.env.SSFER_NATIVE_SIMD === '1') return 1;
    return ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => flags.includes(f)) ? 2 : 1;
  } catch {
    return 0;
  }
}

if (process.platform === 'win32') give('Windows builds are not supported');
const nodeDir = path.resolve(path.dirname(process.execPath), '..');
if (!existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'))) {
  give(`Node headers not found under ${path.join(nodeDir, 'include', 'node')}`);
}
const cxx = process.env.CXX || (has('c++', ['--version']) ? 'c++' : has('g++', ['--version']) ? 'g++' : null);
if (!cxx) give('no C++ compiler (install g++)');
if (!has('make', ['--version'])) give('make is not installed');
if (!canLinkOpenBlas(cxx)) give('OpenBLAS not found (install libopenblas-dev)');
try {
  require.resolve('node-addon-api');
} catch {
  give('node-addon-api is not installed (run npm install)');
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) give('node-gyp not found (it ships with npm)');

const args = [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--jobs=max', '--', `-Dssfer_simd=${simdFlag()}`];
const quiet = ifPossible;
const r = spawnSync(process.execPath, args, {
  cwd: here,
  encoding: 'utf8',
  stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit',
  env: { ...process.env, npm_config_nodedir: nodeDir },
});
if (r.status !== 0 || !existsSync(addonPath)) {
  let hint = '';
  if (quiet) {
    const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
    mkdirSync(path.join(here, 'build'), { recursive: true });
    const logPath = path.join(here, 'build', 'build.log');
    writeFileSync(logPath, log);
    const firstError = log.split('\n').find((l) => /error/i.test(l) && !/gyp (ERR|info)/.test(l));
    hint = `${firstError ? firstError.trim().slice(0, 160) + '; ' : ''}log: ${path.relative(process.cwd(), logPath)}`;
  }
  give(`node-gyp exited with ${r.status ?? r.signal}${hint ? ` (${hint})` : ''}`);
}

// Loading it here catches a missing runtime library now rather than at training time.
const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonPath)})`], { encoding: 'utf8' });
if (check.status !== 0) {
  give(`the built addon does not load: ${(check.stderr || '').split('\n').find((l) => l.trim()) ?? 'unknown error'}`);
}
console.log(`ssfer: native kernels built (${path.relative(process.cwd(), addonPath)})`);
