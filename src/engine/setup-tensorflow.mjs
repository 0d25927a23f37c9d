#!/usr/bin/env node
// Builds the `tensorflow` backend from PyPI's TensorFlow: a Python venv with the tensorflow-cpu
// wheel (or tensorflow[and-cuda] with --gpu), @tensorflow/tfjs-node(-gpu) installed without its
// install script (which would download libtensorflow 2.9.1), its native binding compiled offline
// against the wheel's libraries and C headers and the local Node's headers.
//
//   npm run setup:tensorflow [-- --gpu] [-- --force] [-- --python PYTHON]
//
// Everything lands in .tensorflow/ at the project root (venv/ or venv-gpu/, node_modules/, manifest.json),
// outside node_modules so that `npm ci` leaves it alone; src/engine/backend.ts loads it from
// there. Running it again checks what is there and redoes only what is missing or stale.
// Plain JavaScript, like src/native/build.mjs: it needs nothing of the project but Node.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statfsSync, symlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TENSORFLOW_VERSION = '2.21.0';
const TFJS_NODE_VERSION = '4.22.0';
/** The name tfjs-node's build and install script look for (its pinned libtensorflow). */
const LEGACY_LIBTENSORFLOW = 'libtensorflow.so.2.9.1';
/** The C API headers the binding includes, as laid out in the wheel's include/. */
const HEADERS = [
  'tensorflow/c/c_api.h',
  'tensorflow/c/c_api_macros.h',
  'tensorflow/c/eager/c_api.h',
  'tensorflow/c/tf_attrtype.h',
  'tensorflow/c/tf_buffer.h',
  'tensorflow/c/tf_datatype.h',
  'tensorflow/c/tf_status.h',
  'tensorflow/c/tf_tensor.h',
  'tensorflow/c/tf_tstring.h',
  'tensorflow/core/platform/ctstring.h',
  'tensorflow/core/platform/ctstring_internal.h',
  'tsl/platform/ctstring.h',
  'tsl/platform/ctstring_internal.h',
  'xla/tsl/c/tsl_status.h',
];
/** Free space needed for a first setup: the wheel is unpacked (1.3 GB CPU, several GB with CUDA) beside pip's cache. */
const NEEDED_GIB = { cpu: 3, gpu: 12 };

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const home = path.join(root, '.tensorflow');
const manifestPath = path.join(home, 'manifest.json');

const args = process.argv.slice(2);
const usage = 'usage: npm run setup:tensorflow [-- --gpu] [--force] [--python PYTHON]';
const flavour = args.includes('--gpu') ? 'gpu' : 'cpu';
const force = args.includes('--force');
const pyAt = args.indexOf('--python');
const basePython = pyAt >= 0 ? args[pyAt + 1] : process.env.PYTHON || 'python3';
if (pyAt >= 0 && !basePython) fail('--python needs a path', usage, 2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--python') i++;
  else if (!['--gpu', '--force', '--help', '-h'].includes(args[i])) fail(`unknown option '${args[i]}'`, usage, 2);
}
if (args.includes('--help') || args.includes('-h')) {
  console.log(usage);
  process.exit(0);
}
// One venv per flavour: tensorflow-cpu and tensorflow install the same module.
const venv = path.join(home, flavour === 'gpu' ? 'venv-gpu' : 'venv');
const python = path.join(venv, 'bin', 'python');
const pkg = flavour === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
const wheel = flavour === 'gpu' ? 'tensorflow[and-cuda]' : 'tensorflow-cpu';
const wheelDist = flavour === 'gpu' ? 'tensorflow' : 'tensorflow-cpu';
const pkgDir = path.join(home, 'node_modules', ...pkg.split('/'));
const bindingPath = path.join(pkgDir, 'lib', 'napi-v8', 'tfjs_binding.node');

function fail(what, fix, status = 1) {
  console.error(`ssfer: setup:tensorflow: ${what}${fix ? `\n  fix: ${fix}` : ''}`);
  process.exit(status);
}

function step(msg) {
  console.log(`ssfer: ${msg}`);
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8', ...opts });
  if (r.error) return { ok: false, out: '', err: r.error.message };
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function has(cmd, argv = ['--version']) {
  return run(cmd, argv, { capture: true }).ok;
}

function readManifest() {
  try {
    return JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch {
    return null;
  }
}

/** Replaces whatever is at `at` by a symlink to `target`. */
function link(target, at) {
  try {
    lstatSync(at);
    rmSync(at, { force: true });
  } catch {
    // nothing there yet
  }
  symlinkSync(target, at);
}

// --- what must be there before anything is downloaded --------------------------------------------
if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(
    `the PyPI wheels this builds from are used here for Linux x86-64 only (this is ${process.platform}-${process.arch})`,
    'install @tensorflow/tfjs-node the usual way on this platform',
  );
}
const nodeDir = path.resolve(path.dirname(process.execPath), '..');
if (!existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'))) {
  fail(
    `Node's C headers are missing (no ${path.join(nodeDir, 'include', 'node', 'node_api.h')}); the binding is compiled against them, offline`,
    "install a Node that ships its headers: Debian/Ubuntu's nodejs package from NodeSource does, Debian's own nodejs needs `apt-get install libnode-dev`, the nodejs.org tarballs do",
  );
}
if (!has(process.env.CXX || 'g++')) fail('no C++ compiler (g++) to build the binding', 'apt-get install g++ make');
if (!has('make')) fail('make is not installed', 'apt-get install make');
if (!has(basePython)) fail(`${basePython} not found`, 'apt-get install python3 python3-venv (or pass --python PATH)');

const manifest = readManifest();
const want = { flavour, package: pkg, tfjsNode: TFJS_NODE_VERSION, tensorflow: TENSORFLOW_VERSION };
const matches = manifest && Object.entries(want).every(([k, v]) => manifest[k] === v);
if (matches && !force && existsSync(bindingPath) && verify(false)) {
  step(
    `tensorflow backend already set up (${pkg} ${TFJS_NODE_VERSION} on ${wheelDist} ${TENSORFLOW_VERSION}, ${manifest.device ?? 'cpu'}); --force rebuilds it`,
  );
  process.exit(0);
}

mkdirSync(home, { recursive: true });

// --- 1. the venv and the wheel ----------------------------------------------------------------------
function installedWheel() {
  if (!existsSync(python)) return null;
  const r = run(python, ['-c', `import importlib.metadata as m; print(m.version(${JSON.stringify(wheelDist)}))`], { capture: true });
  return r.ok ? r.out.trim() : null;
}

if (installedWheel() !== TENSORFLOW_VERSION) {
  const free = statfsSync(home);
  const freeGiB = (free.bavail * free.bsize) / 2 ** 30;
  if (freeGiB < NEEDED_GIB[flavour]) {
    fail(
      `not enough disk space: ${wheel} ${TENSORFLOW_VERSION} needs about ${NEEDED_GIB[flavour]} GiB free in ${home}, there are ${freeGiB.toFixed(1)} GiB`,
      'free some space (pip keeps its downloads in ~/.cache/pip) and run it again',
    );
  }
  if (!existsSync(python)) {
    if (!run(basePython, ['-c', 'import venv, ensurepip'], { capture: true }).ok) {
      fail(`${basePython} cannot create a virtual environment (its venv/ensurepip modules are missing)`, 'apt-get install python3-venv');
    }
    step(`creating the Python venv ${path.relative(root, venv)}`);
    rmSync(venv, { recursive: true, force: true });
    const r = run(basePython, ['-m', 'venv', venv], { capture: true });
    if (!r.ok) fail(`${basePython} -m venv failed: ${(r.err || r.out).trim().split('\n').pop()}`, 'apt-get install python3-venv');
  }
  step(`installing ${wheel}==${TENSORFLOW_VERSION} into it (a few hundred MB from PyPI)`);
  const r = run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', `${wheel}==${TENSORFLOW_VERSION}`]);
  if (!r.ok) {
    fail(
      `pip could not install ${wheel}==${TENSORFLOW_VERSION}`,
      `check the Python version (${basePython} --version; the wheel needs 3.10-3.13) and the network; --python PATH picks another interpreter`,
    );
  }
  if (installedWheel() !== TENSORFLOW_VERSION) fail(`${wheelDist} ${TENSORFLOW_VERSION} is still not installed in ${venv}`);
}
const siteTf = run(python, ['-c', `import importlib.util as u; print(u.find_spec('tensorflow').submodule_search_locations[0])`], { capture: true });
if (!siteTf.ok)
  fail(
    `the venv's tensorflow package cannot be located: ${siteTf.err.trim().split('\n').pop()}`,
    `npm run setup:tensorflow -- --force${flavour === 'gpu' ? ' --gpu' : ''}`,
  );
const tfDir = siteTf.out.trim();
const libCc = path.join(tfDir, 'libtensorflow_cc.so.2');
const libFw = path.join(tfDir, 'libtensorflow_framework.so.2');
for (const lib of [libCc, libFw]) {
  if (!existsSync(lib))
    fail(
      `the wheel has no ${path.basename(lib)} (looked in ${tfDir})`,
      `a ${wheelDist} ${TENSORFLOW_VERSION} wheel for Linux x86-64 ships it; rerun with --force`,
    );
}

// --- 2. tfjs-node without its install script --------------------------------------------------------
const require = createRequire(path.join(root, 'package.json'));
let projectTfjs;
try {
  projectTfjs = require('@tensorflow/tfjs/package.json').version;
} catch {
  fail("the project's @tensorflow/tfjs is not installed", 'run npm ci first');
}
if (projectTfjs !== TFJS_NODE_VERSION) {
  fail(
    `the project uses @tensorflow/tfjs ${projectTfjs}, but this builds ${pkg} ${TFJS_NODE_VERSION}, which needs tfjs ${TFJS_NODE_VERSION} (one tfjs-core per process)`,
    `change TFJS_NODE_VERSION in ${path.relative(root, fileURLToPath(import.meta.url))} to ${projectTfjs}`,
  );
}
const installedPkg = (() => {
  try {
    return JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
})();
if (installedPkg !== TFJS_NODE_VERSION || force) {
  step(`installing ${pkg}@${TFJS_NODE_VERSION} into ${path.relative(root, home)} (--ignore-scripts: its install script would download libtensorflow 2.9.1)`);
  writeFileSync(
    path.join(home, 'package.json'),
    JSON.stringify(
      { private: true, description: 'tensorflow backend of ssfer (npm run setup:tensorflow)', dependencies: { [pkg]: TFJS_NODE_VERSION } },
      null,
      2,
    ) + '\n',
  );
  const npm = process.env.npm_execpath;
  const r =
    npm && npm.endsWith('.js')
      ? run(process.execPath, [npm, 'install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: home })
      : run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: home });
  if (!r.ok) fail(`npm install ${pkg}@${TFJS_NODE_VERSION} failed`, 'check that the npm registry is reachable, then run it again');
}
// tfjs-node must use the project's tfjs (a second tfjs-core would hold a second kernel registry):
// without its own copy under .tensorflow/node_modules, Node resolves the one in the project's.
const ownTf = path.join(home, 'node_modules', '@tensorflow');
for (const name of readdirSync(ownTf)) {
  if (name !== path.basename(pkgDir)) rmSync(path.join(ownTf, name), { recursive: true, force: true });
}

// --- 3. the wheel's libraries and headers in the binding's deps -------------------------------------
const depsLib = path.join(pkgDir, 'deps', 'lib');
const depsInclude = path.join(pkgDir, 'deps', 'include');
rmSync(path.join(pkgDir, 'deps'), { recursive: true, force: true });
mkdirSync(depsLib, { recursive: true });
link(libCc, path.join(depsLib, 'libtensorflow_cc.so.2'));
link(libFw, path.join(depsLib, 'libtensorflow_framework.so.2'));
link(libCc, path.join(depsLib, 'libtensorflow.so'));
link(libFw, path.join(depsLib, 'libtensorflow_framework.so'));
link(libCc, path.join(depsLib, LEGACY_LIBTENSORFLOW));
if (flavour === 'gpu') {
  // The CUDA wheels' libraries find cuDNN, cuBLAS… through RUNPATHs relative to the wheel
  // ($ORIGIN/../nvidia/…); a library loaded through the links here sees $ORIGIN = deps/lib.
  const nvidia = path.join(tfDir, '..', 'nvidia');
  if (existsSync(nvidia)) link(nvidia, path.join(pkgDir, 'deps', 'nvidia'));
}
for (const h of HEADERS) {
  const from = path.join(tfDir, 'include', h);
  if (!existsSync(from))
    fail(`the wheel has no header ${h} (looked in ${path.join(tfDir, 'include')})`, `rerun with --force; a ${wheelDist} ${TENSORFLOW_VERSION} wheel ships it`);
  mkdirSync(path.dirname(path.join(depsInclude, h)), { recursive: true });
  copyFileSync(from, path.join(depsInclude, h));
}

// --- 4. the binding, compiled offline ---------------------------------------------------------------
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(path.resolve(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  candidates.push(path.join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) fail('node-gyp not found (it ships with npm)', 'run this through npm: npm run setup:tensorflow');
step(`compiling ${pkg}'s binding against the wheel's libtensorflow (about a minute)`);
// The variables node-pre-gyp would pass; napi 8 is what the package's loader picks on Node >= 12.
const moduleDir = path.join(pkgDir, 'lib', 'napi-v8');
const gyp = run(
  process.execPath,
  [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--jobs=max', '--module_name=tfjs_binding', `--module_path=${moduleDir}`, '--napi_build_version=8'],
  { cwd: pkgDir, env: { ...process.env, npm_config_nodedir: nodeDir } },
);
if (!gyp.ok || !existsSync(bindingPath))
  fail(`compiling the binding failed (node-gyp output above)`, 'check that g++ and make work, then run it again with --force');

// --- 5. check it runs, and record what was built ---------------------------------------------------
if (!verify(true)) fail('the built binding does not run (see above)', `npm run setup:tensorflow -- --force${flavour === 'gpu' ? ' --gpu' : ''}`);

/** Loads the binding in a fresh process, multiplies two matrices on it; records the manifest when `record`. */
function verify(record) {
  const script = `
    const { createRequire } = require('node:module');
    const r = createRequire(${JSON.stringify(path.join(home, 'package.json'))});
    const tf = r(${JSON.stringify(pkg)});
    tf.setBackend('tensorflow');
    const y = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync();
    if (y[0] !== 17 || y[1] !== 39) throw new Error('wrong product ' + Array.from(y));
    const b = tf.backend();
    console.log(JSON.stringify({ tf: b.binding.TF_Version, gpu: !!b.isUsingGpuDevice }));`;
  const r = run(process.execPath, ['-e', script], { capture: true, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (!r.ok) {
    if (record) console.error(r.err.trim().split('\n').slice(-5).join('\n'));
    return false;
  }
  const info = JSON.parse(r.out.trim().split('\n').pop());
  if (record && flavour === 'gpu') {
    // What TensorFlow itself sees, to tell a driver or CUDA problem from a binding one.
    const seen = run(python, ['-c', 'import tensorflow as tf; print(tf.config.list_physical_devices("GPU"))'], {
      capture: true,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    });
    step(`TensorFlow in the venv sees: ${seen.ok ? seen.out.trim() : seen.err.trim().split('\n').pop()}`);
  }
  if (record) {
    writeFileSync(
      manifestPath,
      JSON.stringify({ ...want, libtensorflow: info.tf, device: info.gpu ? 'gpu' : 'cpu', tensorflowDir: tfDir, builtAt: new Date().toISOString() }, null, 2) +
        '\n',
    );
    step(
      `tensorflow backend built: ${pkg} ${TFJS_NODE_VERSION} on libtensorflow ${info.tf} (${info.gpu ? 'a GPU is in use' : 'CPU'}); use it with --backend tensorflow`,
    );
  }
  return true;
}
