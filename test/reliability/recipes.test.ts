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
