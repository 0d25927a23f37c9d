// Module resolution hooks for plugin files (registered with node:module's register by
// src/core/plugin-import.ts; they run on the loader thread, in plain JavaScript). They do three
// things, and nothing else:
//
// 1. A file outside this installation that imports `ssfer` or `@tensorflow/tfjs…` gets this
//    installation's copy, as if it had been imported from here: a plugin in any folder finds the
//    public API, and it shares the core's tfjs (one engine, one Tensor class), never a second copy.
// 2. A plugin file, and every file it imports by path, is an ES module when it is TypeScript
//    (.ts, .tsx) or JavaScript written as one (import/export): where no package.json says
//    "type": "module", Node would take it for CommonJS (and tsx would compile it to CommonJS).
// 3. `ssfer-resolve:{"name":…,"from":…}` answers where an import of a package named in a recipe
//    would go from the recipe's folder, as Node resolves it (exports, conditions, node_modules).

const API = /^ssfer(?:\/.*)?$/;
const TFJS = /^@tensorflow\/tfjs(?:-[a-z0-9-]+)?(?:\/.*)?$/;
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileFunction } from 'node:vm';

const TYPESCRIPT = /\.tsx?$/;
const JAVASCRIPT = /\.jsx?$/;

/** The installation's folder (a file: URL ending in '/'), a file inside it to resolve from, and the module that imports plugins. */
let root = '';
let anchor = '';
let importer = '';
/** The scheme of rule 3 (`ssfer-resolve:`). */
let resolveScheme = '';
/** Plugin files and the files they import by path (URLs without their query). */
const pluginScope = new Set();

export function initialize(data) {
  ({ root, anchor, importer, resolveScheme } = data);
}

const withoutQuery = (url) => url.replace(/[?#].*$/, '');
const byPath = (specifier) => /^(?:\.{1,2}\/|\/|file:)/.test(specifier);

export async function resolve(specifier, context, next) {
  if (resolveScheme && specifier.startsWith(resolveScheme)) {
    const { name, from } = JSON.parse(decodeURIComponent(specifier.slice(resolveScheme.length)));
    const found = await next(name, { ...context, parentURL: from });
    return { url: `data:text/javascript,export default ${encodeURIComponent(JSON.stringify(found.url))}`, format: 'module', shortCircuit: true };
  }
  const parent = context.parentURL ? withoutQuery(context.parentURL) : '';
  const outside = parent.startsWith('file:') && !parent.startsWith(root);
  if (outside && API.test(specifier)) return next(specifier, { ...context, parentURL: anchor });
  if (outside && TFJS.test(specifier)) {
    try {
      return await next(specifier, { ...context, parentURL: anchor });
    } catch {
      // A tfjs package this installation does not have: as the importing file's folder resolves it.
    }
  }
  const resolved = await next(specifier, context);
  const inScope = parent === importer || (pluginScope.has(parent) && byPath(specifier));
  const url = withoutQuery(resolved.url);
  if (!inScope || !url.startsWith('file:') || url.startsWith(root)) return resolved;
  pluginScope.add(url);
  if (resolved.format === 'module') return resolved;
  if (TYPESCRIPT.test(url) || (JAVASCRIPT.test(url) && hasModuleSyntax(url))) return { ...resolved, format: 'module' };
  return resolved;
}

/** Node's own test for a .js file of no declared type: it does not compile as CommonJS because of import, export or top-level await. */
function hasModuleSyntax(url) {
  try {
    compileFunction(readFileSync(fileURLToPath(url), 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname']);
    return false;
  } catch (err) {
    return err instanceof SyntaxError && /\bimport\b|\bexport\b|await is only valid/.test(err.message);
  }
}
