import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { pluginTemplate, renderTemplate, TEMPLATE_KINDS } from '../src/cli/scaffold.ts';
import { projectRoot, tempDir } from './helpers.ts';

// The plugin guide (docs/plugins.md) as a user follows it: its examples are copied into folders
// outside the repository, with nothing else there, and run with the installed command.

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const guide = fs.readFileSync(path.join(projectRoot, 'docs', 'plugins.md'), 'utf8');

function ssfer(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The guide's files: a fenced block right after `<!-- file: NAME -->`. */
function guideFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of guide.matchAll(/<!-- file: (\S+) -->\n```[a-z]*\n([\s\S]*?)```\n/g)) files.set(m[1]!, m[2]!);
  return files;
}

/** A fresh folder outside the repository holding only the given files of the guide. */
function folderWith(names: readonly string[]): string {
  const dir = tempDir('ssfer-guide-');
  expect(path.relative(projectRoot, dir).startsWith('..'), dir).to.equal(true);
  const files = guideFiles();
  for (const name of names) {
    expect(files.has(name), `the guide shows ${name}`).to.equal(true);
    fs.writeFileSync(path.join(dir, name), files.get(name)!);
  }
  return dir;
}

/** The one cell's results of the latest run of a recipe in a folder. */
function cellResults(dir: string, recipe: string) {
  const runs = path.join(dir, 'results', recipe);
  const run = path.join(runs, fs.readdirSync(runs).sort().at(-1)!);
  const cells = fs.readdirSync(path.join(run, 'cells'));
  expect(cells).to.have.length(1);
  const cell = path.join(run, 'cells', cells[0]!, 'seed-0');
  return {
    metrics: JSON.parse(fs.readFileSync(path.join(cell, 'metrics.json'), 'utf8')),
    log: fs
      .readFileSync(path.join(cell, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    model: JSON.parse(fs.readFileSync(path.join(cell, 'model', 'model.json'), 'utf8')),
  };
}

describe('the plugin guide, followed outside the repository', function () {
  this.timeout(600_000);

  it('shows every example of `ssfer new plugin` as the command writes it', () => {
    const files = guideFiles();
    for (const kind of TEMPLATE_KINDS) {
      const t = pluginTemplate(kind)!;
      expect(t.files.map((f) => f.name)).to.deep.equal([`${t.example}.ts`, `${t.example}.test.ts`, `${t.example}.yaml`]);
      for (const f of t.files) {
        expect(files.get(f.name), `docs/plugins.md shows ${f.name} as src/cli/templates/${kind}/${f.name} has it`).to.equal(f.text);
      }
      expect(guide).to.include(`\n## ${kind}\n`);
    }
    // The README's example is the guide's first one, which the tests below load.
    const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
    expect(readme).to.include(`\`\`\`ts\n${files.get('plain.ts')}\`\`\`\n`);
    expect(readme).to.include('[docs/plugins.md](docs/plugins.md)');
  });

  it('names in its table of the public API only what `ssfer` exports, and `tf` is the core’s tfjs', async () => {
    const api = (await import('ssfer')) as Record<string, unknown>;
    const source = fs.readFileSync(path.join(projectRoot, 'src', 'index.ts'), 'utf8');
    const table = guide.slice(guide.indexOf('\n## The public API'), guide.indexOf('\n## mixing'));
    const names = [...table.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1]!);
    expect(names.length).to.be.above(60);
    // A value is exported at run time; a type is named in an export of src/index.ts.
    const missing = names.filter((n) => !(n in api) && !new RegExp(`^export type[^;]*\\b${n}\\b|\\btype ${n}\\b`, 'm').test(source));
    expect(missing).to.deep.equal([]);
    expect((api.tf as typeof tf).Tensor).to.equal(tf.Tensor);
  });

  it('validates, lists and trains a .ts plugin written from the guide, in a folder with only it and a recipe', () => {
    const dir = folderWith(['cutmix.ts', 'cutmix.yaml']);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['cutmix.ts', 'cutmix.yaml']);
    const validate = ssfer(['validate', 'cutmix.yaml'], dir);
    expect(validate.stderr).to.equal('');
    expect(validate.stdout).to.equal('ok  cutmix.yaml  (1 cell; scales smoke, small, paper)\n');
    expect(validate.status).to.equal(0);

    const listed = ssfer(['plugins', 'mixing', '--plugin', 'cutmix.ts'], dir);
    expect(listed.status).to.equal(0);
    expect(listed.stdout).to.match(/^ {2}cutmix {11}CutMix: pastes a random box of the partner image/m);
    expect(listed.stdout).to.match(/^ {6}alpha: default 1 — the share kept of each image is drawn from Beta\(α, α\)$/m);
    expect(listed.stdout).to.match(/^ {2}facemix /m);

    const run = ssfer(['run', 'cutmix.yaml', '--scale', 'smoke'], dir);
    expect(run.status, run.stderr).to.equal(0);
    const { metrics, log } = cellResults(dir, 'cutmix');
    expect(metrics.stages.supervised).to.equal('2 epochs, 4 steps, cutmix');
    expect(metrics.accuracy).to.be.within(0, 1);
    // The plugin's own figure reached the step log: CutMix ran in every step.
    expect(log.filter((l) => l.stage === 'supervised').map((l) => typeof l.pasted)).to.deep.equal(['number', 'number', 'number', 'number']);
  });

  it('runs every example: the tests pass, each plugin is listed, each recipe validates and trains a cell with its plugin', () => {
    const files = [...guideFiles().keys()];
    const dir = folderWith(files);
    const plugins = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const tests = files.filter((f) => f.endsWith('.test.ts'));
    const recipes = files.filter((f) => f.endsWith('.yaml'));
    expect(recipes).to.have.length(TEMPLATE_KINDS.length);

    const tested = ssfer(['test', ...tests], dir);
    expect(tested.status, tested.stdout).to.equal(0);
    const passed = Number(tested.stdout.match(/^# pass (\d+)$/m)?.[1]);
    expect(passed).to.be.at.least(2 * tests.length);
    expect(tested.stdout).to.match(/^# fail 0$/m);

    const listed = ssfer(['plugins', '--json', ...plugins.flatMap((p) => ['--plugin', p])], dir);
    expect(listed.status, listed.stderr).to.equal(0);
    const mine = (JSON.parse(listed.stdout) as { kind: string; name: string; file: string }[]).filter((p) => p.file.startsWith(fs.realpathSync(dir)));
    expect(mine.map((p) => `${p.kind} ${p.name}`).sort()).to.deep.equal(
      [...TEMPLATE_KINDS.map((k) => `${k} ${pluginTemplate(k)!.example}`), 'mixing plain'].sort(),
    );

    const validated = ssfer(['validate', ...recipes], dir);
    expect(validated.stderr).to.equal('');
    expect(validated.stdout.match(/^ok /gm)).to.have.length(recipes.length);

    // What shows that each cell ran with the plugin its recipe names.
    const used: Record<string, (r: ReturnType<typeof cellResults>) => void> = {
      'pixel-l1': (r) => expect(r.metrics.stages.supervised).to.match(/facemix\(pixel-l1, L4\)$/),
      convex: (r) => expect(r.metrics.stages.supervised).to.match(/facemix\(iou, convex\)$/),
      hflip: (r) => expect(JSON.stringify(r.metrics)).to.not.include('FAILED'),
      mlp: (r) => expect(r.model.backbone.plugin).to.equal('mlp'),
      'pseudo-label': (r) => {
        expect(r.metrics.stages.semi).to.match(/^2 epochs, 4 steps, \d+ % of unlabeled images passed τ in the last epoch$/);
        expect(r.log.filter((l) => l.stage === 'semi').every((l) => l.mask_rate >= 0 && l.mask_rate <= 1)).to.equal(true);
      },
      squares: (r) => expect(r.metrics.dataset.name).to.equal('squares'),
      balanced: (r) => {
        expect(r.metrics.budget).to.equal('4 labels/class');
        expect(r.metrics.labeled_count).to.equal(28);
      },
    };
    for (const recipe of recipes.filter((r) => r !== 'cutmix.yaml')) {
      const name = recipe.replace(/\.yaml$/, '');
      const run = ssfer(['run', recipe, '--scale', 'smoke'], dir);
      expect(run.status, `${recipe}: ${run.stderr}`).to.equal(0);
      const results = cellResults(dir, name);
      expect(results.metrics.accuracy, recipe).to.be.within(0, 1);
      used[name]!(results);
    }
  });

  it('writes each kind’s example under a new name with `ssfer new plugin`, and the result still passes its tests', () => {
    const dir = tempDir('ssfer-new-');
    const r = ssfer(['new', 'plugin', 'mixing', 'my-mixing', '--dir', 'plugins'], dir);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('wrote plugins/my-mixing.ts, plugins/my-mixing.test.ts, plugins/my-mixing.yaml\n');
    expect(r.stdout).to.include('ssfer run plugins/my-mixing.yaml --scale smoke');
    // The other kinds as the command renders them (one process each would only repeat the above).
    const names = TEMPLATE_KINDS.map((kind) => `my-${kind}`);
    for (const kind of TEMPLATE_KINDS) {
      const t = pluginTemplate(kind)!;
      for (const f of renderTemplate(t, `my-${kind}`)) {
        const file = path.join(dir, 'plugins', f.name);
        if (kind === 'mixing') expect(fs.readFileSync(file, 'utf8')).to.equal(f.text);
        else fs.writeFileSync(file, f.text);
        // The example's name stood only where the plugin's name belongs (a name with '-' in an identifier would not compile).
        expect(f.text).to.not.match(new RegExp(`(?<![\\w-])${t.example}(?![\\w-])`));
      }
    }
    const tested = ssfer(['test', ...names.map((n) => `plugins/${n}.test.ts`)], dir);
    expect(tested.status, tested.stdout + tested.stderr).to.equal(0);
    expect(tested.stdout).to.match(/^# fail 0$/m);
    const validated = ssfer(['validate', ...names.map((n) => `plugins/${n}.yaml`)], dir);
    expect(validated.stderr).to.equal('');
    expect(validated.stdout.match(/^ok /gm)).to.have.length(names.length);
    // A second time nothing is overwritten, and nothing is written.
    const again = ssfer(['new', 'plugin', 'mixing', 'my-mixing', '--dir', 'plugins'], dir);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.match(/my-mixing\.ts, .*my-mixing\.test\.ts, .*my-mixing\.yaml exist already; nothing was written/);
    const clash = ssfer(['new', 'plugin', 'kappa', 'iou'], dir);
    expect(clash.status).to.equal(2);
    expect(clash.stderr).to.equal("ssfer new: a built-in kappa plugin is named 'iou'; choose another name\n");
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['plugins']);
  });
});
