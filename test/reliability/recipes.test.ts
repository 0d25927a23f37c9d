import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { RecipeError } from '../../src/recipe/diagnostics.ts';
import { projectRoot, tempDir, writeFiles } from '../helpers.ts';
import { oneCell, ssfer } from './cli.ts';

async function problems(file: string, sets: string[] = []): Promise<string> {
  try {
    await resolveRecipe(file, { sets });
  } catch (err) {
    if (err instanceof RecipeError) return err.message;
    throw err;
  }
  throw new Error('the recipe was accepted');
}

describe('reliability: recipes a hostile or unlucky user writes', function () {
  this.timeout(120_000);

  describe('prototype pollution', () => {
    for (const set of ['__proto__.x=1', 'data.__proto__.polluted=1', 'data={__proto__: {x: 1}}', 'constructor.prototype.x=1', 'data.size.constructor=1']) {
      it(`refuses --set ${set} without touching Object.prototype`, async () => {
        const message = await problems(oneCell, [set]);
        expect(message).to.match(/cannot be a key: it names a JavaScript object's internals/);
        expect(message).to.match(/^<--set [^>]+>:1:\d+: /);
        expect(({} as Record<string, unknown>).x).to.equal(undefined);
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      });
    }

    it('exits 2 with one line, no stack trace, on the command line', () => {
      const r = ssfer(['validate', oneCell, '--set', '__proto__.x=1', '--scale', 'smoke']);
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.not.match(/\n\s+at /);
      expect(r.stderr).to.contain("<--set __proto__.x=1>:1:1: --set: '__proto__' cannot be a key");
    });

    it('refuses a recipe key __proto__ with its file:line:col instead of dropping it', async () => {
      const dir = writeFiles({ 'r.yaml': fs.readFileSync(oneCell, 'utf8').replace('data:\n', 'data:\n  __proto__: { x: 1 }\n') });
      const message = await problems(path.join(dir, 'r.yaml'));
      expect(message).to.match(/r\.yaml:\d+:3: data\.__proto__: '__proto__' cannot be a key/);
      expect(({} as Record<string, unknown>).x).to.equal(undefined);
    });
  });
});

describe('reliability: loading a recipe of many keys', function () {
  this.timeout(120_000);

  /** Milliseconds to find the problems of a recipe with n unknown keys. */
  async function timed(n: number): Promise<{ ms: number; message: string; count: number }> {
    const dir = tempDir();
    const file = path.join(dir, `many-${n}.yaml`);
    fs.writeFileSync(file, fs.readFileSync(oneCell, 'utf8') + Array.from({ length: n }, (_, i) => `junk${i}: ${i}\n`).join(''));
    const t = process.hrtime.bigint();
    try {
      await resolveRecipe(file, { scale: 'smoke' });
    } catch (err) {
      if (!(err instanceof RecipeError)) throw err;
      return { ms: Number(process.hrtime.bigint() - t) / 1e6, message: err.message, count: err.diagnostics.length };
    }
    throw new Error('accepted');
  }

  it('grows linearly with the number of keys and prints at most 50 problems', async () => {
    await timed(2_000); // warm-up: schema compilation
    const small = await timed(10_000);
    const large = await timed(40_000);
    expect(large.count).to.equal(40_000);
    // Linear: four times the keys in well under sixteen times the time (quadratic was ~16×).
    expect(large.ms / small.ms, `${small.ms} ms → ${large.ms} ms`).to.be.below(8);
    const lines = large.message.split('\n');
    expect(lines).to.have.length(51);
    expect(lines[50]).to.equal('… and 39950 more');
    expect(lines[0]).to.match(/many-40000\.yaml:\d+:1: junk0: unknown key 'junk0'/);
  });

  it('still reports a duplicate key with its position', async () => {
    const dir = writeFiles({ 'dup.yaml': 'title: a\nseed: 1\ntitle: b\n' });
    expect(await problems(path.join(dir, 'dup.yaml'))).to.match(/dup\.yaml:3:1: yaml: Map keys must be unique/);
  });
});

describe('reliability: numbers in a recipe', () => {
  const cases: [string, RegExp][] = [
    ['seed=1e309', /seed: must be a finite number \(got Infinity\)/],
    ['seed=4294967296', /seed: must be <= 4294967295 \(got 4294967296\): seeds are 32-bit/],
    ['pipeline.supervised.epochs=1e309', /pipeline\.supervised\.epochs: must be a finite number \(got Infinity\)/],
    ['pipeline.supervised.epochs=1000000', /pipeline\.supervised\.epochs: must be <= 100000 \(got 1000000\): at most 100000 epochs/],
    ['pipeline.supervised.lr=.inf', /pipeline\.supervised\.lr: must be a finite number \(got Infinity\)/],
    ['pipeline.supervised.lr=100', /pipeline\.supervised\.lr: must be <= 10 \(got 100\): at most 10: AdamW rates/],
    ['pipeline.supervised.warmup_epochs=.inf', /pipeline\.supervised\.warmup_epochs: must be a finite number \(got Infinity\)/],
    ['data.size.train=1e20', /data\.size\.train: must be <= 10000000 \(got 100000000000000000000\): at most 10 million images/],
    ['pipeline.supervised.lr=.nan', /pipeline\.supervised\.lr: must be a finite number \(got NaN\)/],
    ['evaluation.batch_size=1e9', /evaluation\.batch_size: must be <= 65536 \(got 1000000000\): at most 65536 images per batch/],
  ];
  for (const [set, want] of cases) {
    it(`refuses --set ${set} at validation, saying the bound and why`, async () => {
      const message = await problems(oneCell, [set]);
      expect(message).to.match(want);
      expect(message).to.not.contain('(got null)');
      expect(message.split('\n')).to.have.length(1);
    });
  }
});

describe('reliability: extends', () => {
  it('refuses a file that is not a recipe without echoing its content', async () => {
    const secret = writeFiles({ shadow: 'root:$6$verysecrethash:19000:0:99999:7:::\nbob:$6$other:19000::::::\n' });
    const dir = writeFiles({ 'r.yaml': `extends: [${path.join(secret, 'shadow')}]\n${fs.readFileSync(oneCell, 'utf8')}` });
    const message = await problems(path.join(dir, 'r.yaml'));
    expect(message).to.match(/r\.yaml:1:\d+: extends\.0: '.*shadow' is not a recipe: extends names \.yaml or \.yml files/);
    expect(message).to.not.contain('secret');
    expect(message).to.not.contain('root');
    expect(message.split('\n')).to.have.length(1);
  });

  it('does not echo the lines of a .yaml file that is not a mapping', async () => {
    const secret = writeFiles({ 'list.yaml': '- root:x:secretvalue\n- bob\n' });
    const dir = writeFiles({ 'r.yaml': `extends: ${path.join(secret, 'list.yaml')}\n${fs.readFileSync(oneCell, 'utf8')}` });
    const message = await problems(path.join(dir, 'r.yaml'));
    expect(message).to.match(/list\.yaml:1:1: a recipe must be a YAML mapping/);
    expect(message).to.not.contain('secretvalue');
  });
});

describe('reliability: plugins are code', () => {
  it('the README and validate --help say that a recipe’s plugin files run, validate and plan included', () => {
    const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
    expect(readme).to.contain("**A recipe's plugins are code, and it runs.**");
    expect(readme).to.contain('during `validate` and `plan` too');
    const help = ssfer(['validate', '--help']);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('a plugin file is code that runs');
    expect(help.stdout).to.not.contain('Nothing is run or written.');
  });
});
