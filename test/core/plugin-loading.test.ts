import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { createRegistry, PluginLoadError } from '../../src/core/registry.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { RecipeError } from '../../src/recipe/diagnostics.ts';
import { projectRoot, writeFiles } from '../helpers.ts';

// Plugins written as a user writes them, in folders outside the repository: they import the
// public API as 'ssfer' and tfjs as '@tensorflow/tfjs', with or without a package.json near them.

type Seen = { Tensor: unknown; engine: unknown; apiTensor: unknown; apiEngine: unknown; helper: number };
const seen = ((globalThis as { ssferPluginSeen?: Record<string, Seen> }).ssferPluginSeen ??= {});

const TS = { ts: true, mts: true, js: false, mjs: false } as const;
type Ext = keyof typeof TS;

/** A mixing plugin that imports the API, tfjs and a helper file by path, and records what it got. */
function pluginSource(name: string, ext: Ext): string {
  const helper = TS[ext] ? `./${name}-helper.ts` : `./${name}-helper.js`;
  const typed = TS[ext] ? ': number' : '';
  return `import { definePlugin, options, tf, Type } from 'ssfer';
import * as direct from '@tensorflow/tfjs';
import { twice } from '${helper}';

const factor${typed} = twice(21);
globalThis.ssferPluginSeen['${name}'] = { Tensor: direct.Tensor, engine: direct.engine(), apiTensor: tf.Tensor, apiEngine: tf.engine(), helper: factor };

export default definePlugin({
  kind: 'mixing',
  name: '${name}',
  description: 'a plugin from a folder of its own',
  options: options({ alpha: Type.Number({ default: 1 }) }),
  create: (o) => ({
    name: '${name}',
    loss(batch, ctx) {
      return { loss: tf.tidy(() => tf.mean(ctx.logits(batch.images)).mul(o.alpha)), stats: {} };
    },
  }),
});
`;
}

const helperSource = (ts: boolean) => (ts ? 'export const twice = (x: number): number => 2 * x;\n' : 'export const twice = (x) => 2 * x;\n');

async function loadError(files: string[]): Promise<PluginLoadError> {
  try {
    await createRegistry(files);
  } catch (err) {
    expect(err).to.be.instanceOf(PluginLoadError);
    return err as PluginLoadError;
  }
  throw new Error('expected the plugin to be refused');
}

describe('plugins from any folder', function () {
  this.timeout(60_000);
  const packageJsons: Record<string, string | null> = {
    'no package.json': null,
    'a package.json without "type"': '{ "name": "my-plugins", "version": "1.0.0" }',
    'a package.json with "type": "module"': '{ "name": "my-plugins", "type": "module" }',
  };
  for (const [where, packageJson] of Object.entries(packageJsons)) {
    it(`loads .ts, .mts, .js and .mjs plugins with ${where}; each sees the core's own tfjs`, async () => {
      const tag = where.replace(/[^a-z]+/g, '-').replace(/^-|-$/g, '');
      const files: Record<string, string> = packageJson ? { 'package.json': packageJson } : {};
      const names = (Object.keys(TS) as Ext[]).map((ext) => [ext, `folder-${tag}-${ext}`] as const);
      for (const [ext, name] of names) {
        files[`${name}.${ext}`] = pluginSource(name, ext);
        files[`${name}-helper.${TS[ext] ? 'ts' : 'js'}`] = helperSource(TS[ext]);
      }
      const dir = writeFiles(files);
      expect(path.relative(projectRoot, dir).startsWith('..')).to.equal(true);
      const registry = await createRegistry(names.map(([ext, name]) => path.join(dir, `${name}.${ext}`)));
      for (const [ext, name] of names) {
        expect(registry.has('mixing', name), ext).to.equal(true);
        const s = seen[name]!;
        expect(s.helper, ext).to.equal(42);
        // The same module instance as the core's: one Tensor class, one engine.
        expect(s.Tensor, ext).to.equal(tf.Tensor);
        expect(s.apiTensor, ext).to.equal(tf.Tensor);
        expect(s.engine, ext).to.equal(tf.engine());
        expect(s.apiEngine, ext).to.equal(tf.engine());
        const made = registry.create('mixing', { use: name, alpha: 2 }, { seed: 1, scale: 'smoke', recipeDir: dir });
        const images = tf.ones([2, 4, 4, 3]) as tf.Tensor4D;
        const { loss } = made.loss(
          { images, labels: tf.tensor1d([0, 1], 'int32'), boxes: tf.zeros([2, 4]) as tf.Tensor2D },
          {
            numClasses: 2,
            labelSmoothing: 0,
            realLabelSmoothing: 0,
            rng: undefined as never,
            logits: (x) => tf.reshape(tf.slice(tf.reshape(x, [2, 48]), [0, 0], [2, 2]), [2, 2]) as tf.Tensor2D,
          },
        );
        expect(loss.dataSync()[0], ext).to.equal(2);
        tf.dispose([images, loss]);
      }
    });
  }

  it('loads a .ts plugin even where a package.json says "type": "commonjs"', async () => {
    const dir = writeFiles({
      'package.json': '{ "type": "commonjs" }',
      'cjs-folder.ts': pluginSource('cjs-folder', 'ts'),
      'cjs-folder-helper.ts': helperSource(true),
    });
    const registry = await createRegistry([path.join(dir, 'cjs-folder.ts')]);
    expect(registry.has('mixing', 'cjs-folder')).to.equal(true);
    expect(seen['cjs-folder']!.Tensor).to.equal(tf.Tensor);
  });

  it('gives a plugin the running installation’s tfjs even when its own folder has another copy', async () => {
    const dir = writeFiles({
      // A second "tfjs" where Node alone would find it first.
      'node_modules/@tensorflow/tfjs/package.json': '{ "name": "@tensorflow/tfjs", "version": "0.0.1", "main": "index.js" }',
      'node_modules/@tensorflow/tfjs/index.js': 'exports.Tensor = class Tensor {}; exports.engine = () => "a second engine";\n',
      'second-copy.ts': pluginSource('second-copy', 'ts'),
      'second-copy-helper.ts': helperSource(true),
    });
    const plain = createRequire(path.join(dir, 'second-copy.ts')).resolve('@tensorflow/tfjs');
    expect(plain).to.equal(path.join(dir, 'node_modules', '@tensorflow', 'tfjs', 'index.js'));
    await createRegistry([path.join(dir, 'second-copy.ts')]);
    expect(seen['second-copy']!.Tensor).to.equal(tf.Tensor);
    expect(seen['second-copy']!.engine).to.equal(tf.engine());
  });

  it('does the same under the installed command: the plugin’s tfjs is the API’s, not the copy beside it', () => {
    const dir = writeFiles({
      'node_modules/@tensorflow/tfjs/package.json': '{ "name": "@tensorflow/tfjs", "version": "0.0.1", "main": "index.js" }',
      'node_modules/@tensorflow/tfjs/index.js': 'exports.Tensor = class Tensor {};\n',
      'same-tf.ts': [
        "import * as direct from '@tensorflow/tfjs';",
        "import { definePlugin, options, tf } from 'ssfer';",
        "if (direct.Tensor !== tf.Tensor) throw new Error('a second tfjs');",
        "export default definePlugin({ kind: 'kappa', name: 'same-tf', description: 'd', options: options({}), create: () => ({ name: 'same-tf', similarity: () => tf.zeros([0]) as tf.Tensor1D, kappa: () => tf.zeros([0]) as tf.Tensor1D }) });",
        '',
      ].join('\n'),
    });
    const r = spawnSync(process.execPath, [path.join(projectRoot, 'src', 'bin', 'ssfer.js'), 'plugins', 'kappa', '--plugin', 'same-tf.ts'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stderr).to.equal('');
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/^ {2}same-tf {10}d$/m);
  });

  describe('a plugin file that is not a plugin gets one message naming the file and what was expected', () => {
    const cases: { name: string; file: string; source: string; message: RegExp }[] = [
      {
        name: 'throws when imported',
        file: 'throws.ts',
        source: "import { tf } from 'ssfer';\n\nconst n: number = tf.memory().numTensors;\nthrow new Error(`no GPU here (${n})`);\n",
        message: /throws\.ts:4:7: the plugin threw while it was imported: Error: no GPU here \(\d+\); a plugin file runs when it is loaded/,
      },
      {
        name: 'does not compile',
        file: 'broken.ts',
        source: "import { definePlugin } from 'ssfer';\n\nexport default definePlugin({ kind: 'mixing',, });\n",
        message: /broken\.ts:3:46: the plugin does not compile: Expected identifier but found ","$/,
      },
      {
        name: 'exports nothing',
        file: 'empty.ts',
        source: 'const x: number = 1;\nvoid x;\n',
        message: /empty\.ts: exports nothing; expected export default definePlugin\(\{ kind, name/,
      },
      {
        name: 'exports a plugin without default',
        file: 'named.ts',
        source:
          "import { definePlugin, options } from 'ssfer';\nexport const cutmix = definePlugin({ kind: 'mixing', name: 'named-only', description: 'd', options: options({}), create: () => ({ name: 'x', loss: () => { throw new Error(); } }) });\n",
        message: /named\.ts: exports the plugin 'cutmix' but has no default export; write export default cutmix/,
      },
      {
        name: 'exports other things only',
        file: 'helpers.mjs',
        source: 'export const a = 1;\nexport function b() {}\n',
        message: /helpers\.mjs: exports no plugin \(it exports 'a', 'b'\); expected export default definePlugin/,
      },
      {
        name: 'exports a number',
        file: 'number.js',
        source: 'export default 42;\n',
        message: /number\.js: the default export is number 42, not a plugin; expected export default definePlugin/,
      },
      {
        name: 'exports its factory',
        file: 'factory.mjs',
        source: 'export default function create() { return {}; }\n',
        message: /factory\.mjs: the default export is a function \(create\): export the definition, not its create function/,
      },
      {
        name: 'exports an object that is no plugin',
        file: 'object.ts',
        source: 'export default { alpha: 1 };\n',
        message: /object\.ts: the default export is an object with keys alpha, not a plugin; expected export default definePlugin/,
      },
      {
        name: 'imports an internal path of ssfer',
        file: 'internal.ts',
        source: "import { definePlugin } from 'ssfer/src/core/plugin.ts';\nexport default definePlugin;\n",
        message:
          /internal\.ts: imports 'ssfer\/src\/core\/plugin\.ts', an internal path of ssfer; import from the public API instead: import \{ definePlugin, tf, … \} from 'ssfer'/,
      },
      {
        name: 'imports a module that is not there',
        file: 'missing.ts',
        source: "import { x } from './not-there.ts';\nexport default x;\n",
        message: /missing\.ts: an import of the plugin cannot be found: Cannot find module .*not-there\.ts/,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const dir = writeFiles({ [c.file]: c.source });
        const err = await loadError([path.join(dir, c.file)]);
        expect(err.message).to.match(c.message);
        expect(err.message.split('\n')).to.have.length(1);
        expect(err.message.startsWith(path.join(dir, c.file))).to.equal(true);
      });
    }

    it('and the CLI prints it once with exit status 2', async () => {
      const dir = writeFiles({ 'empty.ts': 'export {};\n' });
      const { main } = await import('../../src/cli/main.ts');
      const written: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
      let status: number;
      try {
        status = await main(['plugins', 'mixing', '--plugin', path.join(dir, 'empty.ts')]);
      } finally {
        process.stderr.write = write;
      }
      expect(status).to.equal(2);
      expect(written.join('')).to.equal(
        `ssfer plugins: ${path.join(dir, 'empty.ts')}: exports nothing; expected export default definePlugin({ kind, name, description, options, create }), or a list of them\n`,
      );
    });
  });

  describe('plugin packages', () => {
    /** A folder with an installed plugin package and a recipe that names it. */
    function project(pkg: { name: string; packageJson: object; files: Record<string, string> }, recipeDir = '.') {
      const files: Record<string, string> = {
        [`node_modules/${pkg.name}/package.json`]: JSON.stringify({ name: pkg.name, version: '1.0.0', ...pkg.packageJson }),
        [path.join(recipeDir, 'recipe.yaml')]: `title: a recipe naming a plugin package\nplugins: ['${pkg.name}']\n`,
      };
      for (const [rel, text] of Object.entries(pkg.files)) files[`node_modules/${pkg.name}/${rel}`] = text;
      return writeFiles(files);
    }

    it('resolves a package named in a recipe from the recipe’s folder, through its exports', async () => {
      const dir = project({
        name: 'ssfer-plugin-cutmix',
        packageJson: { type: 'module', exports: { '.': { import: './src/index.ts', require: './nope.cjs' } } },
        files: { 'src/index.ts': pluginSource('package-cutmix', 'ts'), 'src/package-cutmix-helper.ts': helperSource(true) },
      });
      const r = await resolveRecipe(path.join(dir, 'recipe.yaml'));
      expect(r.registry.has('mixing', 'package-cutmix')).to.equal(true);
      expect(r.registry.origin('mixing', 'package-cutmix')!.file).to.equal(fs.realpathSync(path.join(dir, 'node_modules/ssfer-plugin-cutmix/src/index.ts')));
      expect(seen['package-cutmix']!.Tensor).to.equal(tf.Tensor);
    });

    it('finds a package in a folder above the recipe’s, as Node does; a scoped one by its main', async () => {
      const dir = project(
        {
          name: '@lab/ssfer-plugins',
          packageJson: { main: 'main.js' },
          files: { 'main.js': pluginSource('scoped-cutmix', 'js'), 'scoped-cutmix-helper.js': helperSource(false) },
        },
        'experiments/one',
      );
      const r = await resolveRecipe(path.join(dir, 'experiments/one/recipe.yaml'));
      expect(r.registry.has('mixing', 'scoped-cutmix')).to.equal(true);
    });

    it('reports a package that is not installed at the recipe line that names it', async () => {
      const dir = writeFiles({ 'recipe.yaml': 'title: t\nplugins:\n  - ssfer-plugin-nowhere\n' });
      try {
        await resolveRecipe(path.join(dir, 'recipe.yaml'));
        expect.fail('expected a RecipeError');
      } catch (err) {
        expect(err).to.be.instanceOf(RecipeError);
        expect((err as Error).message).to.equal(
          `${path.join(dir, 'recipe.yaml')}:3:5: plugins.0: plugin package 'ssfer-plugin-nowhere' is not installed in ${dir} or a folder above it; install it there (npm install ssfer-plugin-nowhere), or write a path to a plugin file (./ssfer-plugin-nowhere.ts)`,
        );
      }
    });

    it('still reads a missing relative path as a file', async () => {
      const dir = writeFiles({ 'recipe.yaml': 'title: t\nplugins: [./nope.ts, my/cutmix.ts]\n' });
      try {
        await resolveRecipe(path.join(dir, 'recipe.yaml'));
        expect.fail('expected a RecipeError');
      } catch (err) {
        const lines = (err as Error).message.split('\n');
        expect(lines).to.have.length(2);
        expect(lines[0]).to.match(/recipe\.yaml:2:11: plugins\.0: plugin file not found: .*nope\.ts; fix the path/);
        expect(lines[1]).to.match(/recipe\.yaml:2:22: plugins\.1: plugin file not found: .*my\/cutmix\.ts; fix the path/);
      }
    });
  });
});
