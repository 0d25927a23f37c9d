import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { RecipeError } from '../../src/recipe/diagnostics.ts';
import { tempDir, writeFiles } from '../helpers.ts';
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
