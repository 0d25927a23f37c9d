import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { projectRoot } from './helpers.ts';

// The layering docs/architecture.md describes: a folder imports only from the layers below it.
// src/bench and src/bin are entry points above everything and are not checked.
const LAYERS: Record<string, number> = {
  'src/core': 0,
  'src/onnx': 0,
  'src/contracts': 1,
  'src/recipe': 1,
  'src/engine': 1,
  'src/native': 1,
  'src/train': 2,
  'src/data': 2,
  'src/tracking': 2,
  'src/report': 2,
  'src/model': 2.5,
  'src/export': 2.75,
  'src/pipeline': 3,
  'src/predict': 3,
  'src/cli': 4,
};
/** The one import across a layer: `ssfer compare` prints the table it reads back from MLflow. */
const SAME_LAYER = new Set(['src/tracking -> src/report', 'src/engine -> src/native']);
/** What plugins may use: the contracts and the building blocks, never the orchestrator or the CLI. */
const PLUGINS_MAY_IMPORT = new Set(['plugins', 'src/index.ts', 'src/core', 'src/onnx', 'src/contracts', 'src/engine', 'src/train', 'src/data', 'src/tracking']);
/**
 * The public API (`import … from 'ssfer'`) is what a plugin may use, gathered: it imports from the
 * folders plugins may import and, of plugins/, only the backbones' weight holder and, as types,
 * the contracts of the kinds FaceMix declares. Nothing in src/ imports it.
 */
const PUBLIC_API = 'src/index.ts';
const API_FROM_PLUGINS = new Set(['plugins/backbone/vit/params.ts', 'plugins/mixing/internal/kinds.ts']);

const IMPORT = /(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gms;

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(projectRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'build' || e.name === 'node_modules' ? [] : sources(rel);
    return /\.(ts|mjs|js)$/.test(e.name) ? [rel] : [];
  });
}

/** Every relative import of a file, as project-relative paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(projectRoot, file), 'utf8');
  return [...text.matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2] ?? m[3]!)
    .filter((t) => t.startsWith('.') && !t.endsWith('package.json'))
    .map((t) => path.normalize(path.join(path.dirname(file), t)));
}

const folderOf = (file: string) => (file.startsWith('plugins/') ? 'plugins' : file.split('/').slice(0, 2).join('/'));

describe('architecture', () => {
  const files = [...sources('src'), ...sources('plugins')];

  it('finds the sources it checks', () => {
    expect(files).to.include('src/pipeline/cell.ts');
    expect(files).to.include('plugins/finetune/supervised.ts');
    expect(importsOf('src/pipeline/cell.ts')).to.include('src/pipeline/stages.ts');
  });

  it('imports only downwards: cli → pipeline → train, data, tracking, report → recipe, contracts, engine → core', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      if (from === 'plugins' || !(from in LAYERS)) continue;
      for (const target of importsOf(file)) {
        const to = folderOf(target);
        if (to === from || SAME_LAYER.has(`${from} -> ${to}`)) continue;
        if (!(to in LAYERS) || LAYERS[to]! >= LAYERS[from]!) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('keeps plugins out of the orchestrator, the recipe machinery and the CLI', () => {
    const wrong = files
      .filter((f) => folderOf(f) === 'plugins')
      .flatMap((f) =>
        importsOf(f)
          .filter((t) => !PLUGINS_MAY_IMPORT.has(folderOf(t)))
          .map((t) => `${f} imports ${t}`),
      );
    expect(wrong).to.deep.equal([]);
  });

  it('keeps the public API to what plugins may use: no orchestrator, recipe machinery or CLI', () => {
    expect(files).to.include(PUBLIC_API);
    const wrong = importsOf(PUBLIC_API).filter((t) => (folderOf(t) === 'plugins' ? !API_FROM_PLUGINS.has(t) : !PLUGINS_MAY_IMPORT.has(folderOf(t))));
    expect(wrong).to.deep.equal([]);
    const text = fs.readFileSync(path.join(projectRoot, PUBLIC_API), 'utf8');
    // FaceMix's contracts are types only: the API loads no plugin module.
    expect(text).to.match(/export type \{[^}]*\} from '\.\.\/plugins\/mixing\/internal\/kinds\.ts'/);
    const users = files.filter((f) => f.startsWith('src/') && importsOf(f).includes(PUBLIC_API));
    expect(users).to.deep.equal([]);
  });

  it('has no import cycle between files', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]) => {
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].join(' → '));
        else if (!state.has(t)) visit(t, [...stack, t]);
      }
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f, [f]);
    expect(cycles).to.deep.equal([]);
  });
});
