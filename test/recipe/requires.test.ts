import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { createRegistry, type PluginRegistry } from '../../src/core/registry.ts';
import { RecipeError, formatDiagnostic } from '../../src/recipe/diagnostics.ts';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { projectRoot, writeFiles } from '../helpers.ts';

const recipe = (backbone: string, pretrain: string) => `title: pairing
data:
  dataset: { use: synthetic-faces, classes: 7 }
model:
  backbone: ${backbone}
pipeline:
  pretrain:
    use: ${pretrain}
    epochs: 1
  semi: { use: none }
`;

describe('plugins that need something of another slot', () => {
  let registry: PluginRegistry;
  before(async () => {
    registry = await createRegistry();
  });

  it('refuses MAE pre-training of a backbone without patch tokens, at the pretrain line, before anything runs', async () => {
    const dir = writeFiles({ 'r.yaml': recipe('{ use: small-cnn, image_size: 32 }', 'mae') });
    let messages: string[] = [];
    try {
      await resolveRecipe(path.join(dir, 'r.yaml'), { registry });
    } catch (err) {
      if (!(err instanceof RecipeError)) throw err;
      messages = err.diagnostics.map(formatDiagnostic);
    }
    expect(messages).to.have.length(1);
    expect(messages[0]).to.match(
      /r\.yaml:8:10: pipeline\.pretrain\.use: pretrain 'mae' needs a backbone that provides 'tokens', but model\.backbone is 'small-cnn': MAE masks patch tokens.*choose pipeline\.pretrain: none or supervised/,
    );
  });

  it('accepts the ViT, and other pre-training for a CNN', async () => {
    for (const [backbone, pretrain] of [
      ['{ use: vit, preset: tiny, image_size: 32, patch_size: 8 }', 'mae'],
      ['{ use: resnet, image_size: 32 }', 'supervised'],
      ['{ use: linear }', 'none'],
    ]) {
      const dir = writeFiles({ 'r.yaml': recipe(backbone!, pretrain!).replace('    epochs: 1\n', pretrain === 'none' ? '' : '    epochs: 1\n') });
      const r = await resolveRecipe(path.join(dir, 'r.yaml'), { registry });
      expect(r.cells).to.have.length(1);
    }
  });

  it('ssfer plan says so with exit status 2', () => {
    const dir = writeFiles({ 'r.yaml': recipe('{ use: resnet, depth: 18 }', 'mae') });
    const r = spawnSync(process.execPath, [path.join(projectRoot, 'src', 'bin', 'ssfer.js'), 'plan', path.join(dir, 'r.yaml')], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/pipeline\.pretrain\.use: pretrain 'mae' needs a backbone that provides 'tokens', but model\.backbone is 'resnet'/);
    expect(r.stdout).to.equal('');
  });
});
