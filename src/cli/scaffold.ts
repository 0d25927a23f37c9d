import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `ssfer new plugin <kind> <name>`: a working plugin of a kind, its test and a one-cell recipe
 * that runs it, written from the example of that kind in templates/<kind>/. The examples are
 * complete plugins (CutMix, a pixel-difference κ, …), type-checked and linted with the project,
 * and shown as they are in docs/plugins.md; a new plugin is its kind's example under the new name.
 */

export const TEMPLATES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'templates');

/** The example of one kind: its plugin name and its files (the plugin, its test, its recipe). */
export interface PluginTemplate {
  readonly kind: string;
  readonly example: string;
  readonly files: readonly { readonly name: string; readonly text: string }[];
}

/** The kinds that have an example, in the order the guide presents them. */
export const TEMPLATE_KINDS = ['mixing', 'kappa', 'mix-loss', 'augment', 'backbone', 'ssl', 'dataset', 'sampler'] as const;

export function pluginTemplate(kind: string): PluginTemplate | undefined {
  const dir = path.join(TEMPLATES_DIR, kind);
  if (!(TEMPLATE_KINDS as readonly string[]).includes(kind) || !fs.existsSync(dir)) return undefined;
  // The plugin, its tests, its recipe.
  const order = (n: string) => (n.endsWith('.test.ts') ? 1 : n.endsWith('.yaml') ? 2 : 0);
  const names = fs
    .readdirSync(dir)
    .sort()
    .sort((a, b) => order(a) - order(b));
  const recipe = names.find((n) => n.endsWith('.yaml'));
  if (!recipe) throw new Error(`templates/${kind} has no recipe (.yaml)`);
  const example = recipe.slice(0, -'.yaml'.length);
  return { kind, example, files: names.map((name) => ({ name, text: fs.readFileSync(path.join(dir, name), 'utf8') })) };
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The example's files under another plugin name: the name is replaced wherever it stands as a
 * whole word (the plugin's name, its files, the recipe's `use:`); the examples use it nowhere else.
 */
export function renderTemplate(t: PluginTemplate, name: string): { name: string; text: string }[] {
  const word = new RegExp(`(?<![\\w-])${escaped(t.example)}(?![\\w-])`, 'g');
  return t.files.map((f) => ({ name: f.name.replace(word, name), text: f.text.replace(word, name) }));
}
