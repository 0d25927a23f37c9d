import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cellFolder, makeRunDir } from '../../src/pipeline/results.ts';
import { withoutCredentials } from '../../src/core/uri.ts';
import { projectRoot, tempDir, writeFiles } from '../helpers.ts';
import { bin, oneCell, ssfer, type Ran } from './cli.ts';

const runArgs = (out: string, ...more: string[]) => ['run', oneCell, '--backend', 'cpu', '--out', out, ...more];
const runsOf = (out: string, recipe = 'rel-one') => (fs.existsSync(path.join(out, recipe)) ? fs.readdirSync(path.join(out, recipe)).sort() : []);

/** A pid no process has: one of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** Starts a run and sends `signal` once `ready()` holds (polled); resolves when it exits. */
function signalWhen(args: string[], ready: () => boolean, signal: NodeJS.Signals): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        child.kill(signal);
      }
    }, 5);
    child.on('error', reject);
    child.on('exit', (status, sig) => {
      clearInterval(timer);
      resolve({ status, signal: sig, stdout, stderr });
    });
  });
}

/** Splits a command line printed for a POSIX shell (words, single quotes). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '\\') {
      cur += line[++i];
      inWord = true;
    } else if (ch === ' ') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const supervisedCkpt = (out: string) => () => {
  const runs = runsOf(out);
  return runs.length > 0 && fs.existsSync(path.join(out, 'rel-one', runs[runs.length - 1]!, 'cells', 'default', 'seed-0', 'checkpoints', 'supervised.ckpt'));
};

describe('reliability: run folders, locks, signals, --out', function () {
  this.timeout(300_000);

  it('gives two runs started at the same moment two folders, each with its own result', async () => {
    const same = new Date('2030-01-01T00:00:00.123Z');
    const base = tempDir();
    expect(makeRunDir(base, same)).to.not.equal(makeRunDir(base, same));

    const out = tempDir();
    const start = () =>
      new Promise<Ran>((resolve) => {
        const child = spawn(process.execPath, [bin, ...runArgs(out, '--json')], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (status, signal) => resolve({ status, signal, stdout, stderr }));
      });
    const [a, b] = await Promise.all([start(), start()]);
    expect(a.status, a.stderr).to.equal(0);
    expect(b.status, b.stderr).to.equal(0);
    for (const r of [a, b]) expect(r.stderr).to.not.match(/continues from its checkpoint/);
    const runs = runsOf(out);
    expect(runs).to.have.length(2);
    const metrics = runs.map((r) => JSON.parse(fs.readFileSync(path.join(out, 'rel-one', r, 'cells', 'default', 'seed-0', 'metrics.json'), 'utf8')));
    // The same recipe and seed: both runs, each alone in its folder, reach the same number.
    expect(metrics[0].accuracy).to.equal(metrics[1].accuracy);
    for (const r of runs) expect(fs.existsSync(path.join(out, 'rel-one', r, 'run.lock')), 'the lock is released').to.equal(false);
  });

  it('refuses to resume a run folder a live run holds, and takes over the lock of a dead one', () => {
    const out = tempDir();
    expect(ssfer(runArgs(out)).status).to.equal(0);
    const dir = path.join(out, 'rel-one', runsOf(out)[0]!);
    const lock = path.join(dir, 'run.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: require_hostname(), started: '2030-01-01T00:00:00.000Z' }));
    const held = ssfer(runArgs(out, '--resume'));
    expect(held.status, held.stderr).to.equal(2);
    expect(held.stderr).to.contain(`is in use by another run (pid ${process.pid} on `);
    const dead = deadPid();
    fs.writeFileSync(lock, JSON.stringify({ pid: dead, host: require_hostname(), started: '2030-01-01T00:00:00.000Z' }));
    const stale = ssfer(runArgs(out, '--resume'));
    expect(stale.status, stale.stderr).to.equal(0);
    expect(stale.stderr).to.contain(
      `the run that held it (pid ${dead} on ${require_hostname()}, started 2030-01-01T00:00:00.000Z) no longer runs; taking it over`,
    );
    expect(fs.existsSync(lock)).to.equal(false);
  });

  for (const [signal, status] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`stops on ${signal} like on Ctrl-C: checkpoint kept, run.json interrupted, exit ${status}, resumable`, async () => {
      const out = tempDir();
      const r = await signalWhen(runArgs(out, '--set', 'pipeline.supervised.epochs=40'), supervisedCkpt(out), signal);
      expect(r.signal, r.stderr).to.equal(null);
      expect(r.status, r.stderr).to.equal(status);
      expect(r.stderr).to.contain(`ssfer: ${signal}: stopping after the current step`);
      const dir = path.join(out, 'rel-one', runsOf(out)[0]!);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
      expect(manifest.status).to.equal('interrupted');
      expect(manifest.signal).to.equal(signal);
      expect(fs.existsSync(path.join(dir, 'cells', 'default', 'seed-0', 'checkpoints', 'supervised.ckpt'))).to.equal(true);
      expect(fs.existsSync(path.join(dir, 'run.lock'))).to.equal(false);
    });
  }

  it('prints a resume command that works exactly as printed (flags, --out, --tracking kept)', async () => {
    const cwd = projectRoot;
    const out = tempDir();
    const flags = ['--set', 'pipeline.supervised.epochs=40', '--set', 'description=a run with spaces', '--tracking', 'local', '--scale', 'smoke'];
    const r = await signalWhen(runArgs(out, ...flags), supervisedCkpt(out), 'SIGINT');
    expect(r.status, r.stderr).to.equal(130);
    const line = /Continue with: (ssfer run .*)$/m.exec(r.stderr)?.[1];
    expect(line, r.stderr).to.be.a('string');
    const words = shellWords(line!);
    expect(words.slice(0, 2)).to.deep.equal(['ssfer', 'run']);
    const again = spawnSync(process.execPath, [bin, ...words.slice(1)], { cwd, encoding: 'utf8' });
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/default: supervised continues from its checkpoint after epoch \d+/);
    expect(runsOf(out)).to.have.length(1);
  });

  it('checks --out before anything runs: exit 2 for /proc/x, a file, a read-only folder', () => {
    const proc = ssfer(runArgs('/proc/x'), { timeout: 60_000 });
    expect(proc.signal, 'it returned').to.equal(null);
    expect(proc.status, proc.stderr).to.equal(2);
    expect(proc.stderr).to.match(/--out \/proc\/x: cannot create \/proc\/x \(\w+\); choose a folder you can write/);

    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    const onFile = ssfer(runArgs(file));
    expect(onFile.status, onFile.stderr).to.equal(2);
    expect(onFile.stderr).to.contain(`--out ${file}: is a file, not a folder`);
    expect(onFile.stderr).to.not.match(/\n\s+at /);

    // A folder this user may not write (run as an unprivileged user: root writes anywhere).
    const ro = tempDir();
    fs.chmodSync(ro, 0o555);
    const readOnly = ssfer(runArgs(path.join(ro, 'results')), { uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp' } });
    expect(readOnly.status, readOnly.stderr).to.equal(2);
    expect(readOnly.stderr).to.match(/--out .*results: cannot create .*results \(EACCES\)/);
  });

  it("keeps a recipe named '...yaml' inside --out", () => {
    const parent = tempDir();
    const out = path.join(parent, 'out');
    const dir = writeFiles({ '...yaml': fs.readFileSync(oneCell, 'utf8') });
    const r = ssfer(['run', path.join(dir, '...yaml'), '--backend', 'cpu', '--out', out]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain("...yaml: a recipe's file name names its results folder, and '..' cannot (it would write outside --out); rename the file");
    expect(fs.readdirSync(parent).filter((f) => f !== 'out')).to.deep.equal([]);
  });

  it('removes only our stale temporary files of killed runs at start', () => {
    const out = tempDir();
    const dead = deadPid();
    const old = new Date(Date.now() - 3600_000);
    const files = {
      stale1: path.join(out, '.cache', 'stages', `.pretrain-abc.weights.${dead}.0badc0de.tmp`),
      stale2: path.join(out, 'rel-one', 'x', `table.json.${dead}.tmp`),
      live: path.join(out, 'rel-one', 'x', `table.json.${process.pid}.tmp`),
      fresh: path.join(out, 'rel-one', 'x', `metrics.json.${dead + 1}.tmp`),
      notOurs: path.join(out, 'rel-one', 'x', 'notes.tmp'),
    };
    for (const f of Object.values(files)) {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, Buffer.alloc(1024));
      if (f !== files.fresh) fs.utimesSync(f, old, old);
    }
    const r = ssfer(runArgs(out));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain(`ssfer: removed 2 temporary files (0.0 MiB) that killed runs left under ${out}`);
    expect(fs.existsSync(files.stale1)).to.equal(false);
    expect(fs.existsSync(files.stale2)).to.equal(false);
    for (const kept of [files.live, files.fresh, files.notOurs]) expect(fs.existsSync(kept), kept).to.equal(true);
  });
});

describe('reliability: cell folders', function () {
  this.timeout(300_000);

  it('maps cell ids to folder names one-to-one', () => {
    const ids = ['v=fast lr', 'v=fast_lr', 'v=a/b', 'v=a__b', 'v=a_2fb', 'v=a_5fb', 'v=é', 'v=_c3_a9', 'kappa=iou/dataset=rafdb'];
    const folders = ids.map(cellFolder);
    expect(new Set(folders).size).to.equal(ids.length);
    for (const f of folders) expect(f).to.match(/^[A-Za-z0-9=.+_-]+$/);
    expect(cellFolder('kappa=iou/dataset=rafdb')).to.equal('kappa=iou__dataset=rafdb');
  });

  const gridRecipe = (values: string[]) =>
    writeFiles({
      'grid.yaml': `${fs.readFileSync(oneCell, 'utf8')}grid:\n  rows:\n    - name: v\n      path: description\n      values: [${values.map((v) => JSON.stringify(v)).join(', ')}]\n`,
    });

  it('keeps cells whose values differ only in _ and space apart, and resumes each to its own number', () => {
    const dir = gridRecipe(['fast lr', 'fast_lr']);
    const out = tempDir();
    const r = ssfer(['run', path.join(dir, 'grid.yaml'), '--backend', 'cpu', '--out', out, '--set', 'pipeline.supervised.epochs=1']);
    expect(r.status, r.stderr).to.equal(0);
    const run = path.join(out, 'grid', runsOf(out, 'grid')[0]!);
    expect(fs.readdirSync(path.join(run, 'cells')).sort()).to.deep.equal(['v=fast_20lr', 'v=fast_5flr']);
    for (const [folder, id] of [
      ['v=fast_20lr', 'v=fast lr'],
      ['v=fast_5flr', 'v=fast_lr'],
    ]) {
      expect(JSON.parse(fs.readFileSync(path.join(run, 'cells', folder!, 'seed-0', 'metrics.json'), 'utf8')).id).to.equal(id);
    }
    const table = JSON.parse(fs.readFileSync(path.join(run, 'table.json'), 'utf8'));
    const resumed = ssfer(['run', path.join(dir, 'grid.yaml'), '--backend', 'cpu', '--out', out, '--set', 'pipeline.supervised.epochs=1', '--resume']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'table.json'), 'utf8')).rows).to.deep.equal(table.rows);
  });

  it("resumes an older run's folders, and refuses clearly where two cells met in one", () => {
    const dir = gridRecipe(['a b']);
    const out = tempDir();
    const args = ['run', path.join(dir, 'grid.yaml'), '--backend', 'cpu', '--out', out, '--set', 'pipeline.supervised.epochs=1'];
    expect(ssfer(args).status).to.equal(0);
    const run = path.join(out, 'grid', runsOf(out, 'grid')[0]!);
    // As an older version named it and laid it out: its one seed in the cell's folder itself.
    fs.renameSync(path.join(run, 'cells', 'v=a_20b', 'seed-0'), path.join(run, 'cells', 'v=a_b'));
    fs.rmSync(path.join(run, 'cells', 'v=a_20b'), { recursive: true });
    const resumed = ssfer([...args, '--resume']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stderr, 'the finished cell is kept, not trained again').to.not.match(/v=a b: accuracy/);

    const two = gridRecipe(['a b', 'a_b']);
    fs.cpSync(path.join(out, 'grid'), path.join(out, 'two'), { recursive: true });
    const refused = ssfer([
      'run',
      path.join(two, 'grid.yaml'),
      '--backend',
      'cpu',
      '--out',
      out,
      '--set',
      'pipeline.supervised.epochs=1',
      '--resume',
      path.join(out, 'two', runsOf(out, 'two')[0]!),
    ]);
    expect(refused.status, refused.stderr).to.equal(2);
    expect(refused.stderr).to.match(/(that run used different settings|cells 'v=a b' and 'v=a_b' share the folder cells\/v=a_b)/);
  });
});

describe('reliability: credentials in URIs', function () {
  this.timeout(120_000);

  it('takes user info out of every URI in a value', () => {
    const { value, found } = withoutCredentials({ a: 'http://bob:s%40cret@host:5000/x', b: ['https://tok@h/'], c: 'not a uri bob:secret@x', d: 3 });
    expect(value).to.deep.equal({ a: 'http://host:5000/x', b: ['https://h/'], c: 'not a uri bob:secret@x', d: 3 });
    expect(found.get('http://host:5000/x')).to.deep.equal({ username: 'bob', password: 's@cret' });
  });

  it('never stores or sends the credentials of --tracking-uri', () => {
    const out = tempDir();
    const r = ssfer(runArgs(out, '--tracking', 'mlflow', '--tracking-uri', 'http://bob:secret@127.0.0.1:9'), {
      env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr + r.stdout).to.not.contain('secret');
    const walk = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    const files = walk(out);
    expect(files.some((f) => f.endsWith('mlflow-outbox.jsonl'))).to.equal(true);
    for (const f of files) expect(fs.readFileSync(f).includes('secret'), f).to.equal(false);
    const run = path.join(out, 'rel-one', runsOf(out)[0]!);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'recipe.resolved.json'), 'utf8')).cells[0].config.tracking.uri).to.equal('http://127.0.0.1:9');
  });
});

function require_hostname(): string {
  return spawnSync('hostname', { encoding: 'utf8' }).stdout.trim();
}
