import fs from 'node:fs';
import path from 'node:path';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * How plugin modules are found and imported, from any folder: a path (relative to the recipe
 * that names it, or to the current folder for --plugin) or the name of an installed package
 * (resolved from that folder as Node resolves an import). Importing goes through the hooks in
 * plugin-hooks.mjs, so a plugin file resolves `ssfer` and `@tensorflow/tfjs` to this installation
 * and a plugin is an ES module whether or not a package.json is near it.
 */

const here = import.meta.url;
const installation = new URL('../../', here);
/** The specifier the hooks answer with where an import of a package would go from a folder. */
const RESOLVE_SCHEME = 'ssfer-resolve:';
let hooked = false;

function ensureHooks(): void {
  if (hooked) return;
  register('./plugin-hooks.mjs', here, {
    data: { root: installation.href, anchor: new URL('package.json', installation).href, importer: here, resolveScheme: RESOLVE_SCHEME },
  });
  hooked = true;
}

/** A plugin entry that could not be found: why, and what to do. */
export class PluginEntryError extends Error {
  constructor(
    readonly entry: string,
    message: string,
    /** The file the entry names, where it is a path (the message contains it). */
    readonly file?: string,
  ) {
    super(message);
    this.name = 'PluginEntryError';
  }
}

/** npm's package names, with an optional subpath: `ssfer-plugin-cutmix`, `@lab/ssfer-plugins/cutmix`. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(?:\/[^/]+)*$/;
const PATH_LIKE = /^(?:\.{1,2}(?:[/\\]|$)|[/\\]|[A-Za-z]:[/\\])/;
const SOURCE_FILE = /\.(?:[cm]?[jt]s|tsx)$/;

/**
 * The file a plugin entry names. A path (starting with ./, ../ or /, ending in .ts, .mts, .js or
 * .mjs, or naming a file that exists) is taken relative to `fromDir`; anything else is the name
 * of a package installed in `fromDir` or a folder above it, and its entry point is the file an
 * `import` of that name would load.
 */
export async function resolvePluginEntry(entry: string, fromDir: string): Promise<string> {
  const file = path.resolve(fromDir, entry);
  if (PATH_LIKE.test(entry) || SOURCE_FILE.test(entry) || fs.existsSync(file) || !PACKAGE_NAME.test(entry)) {
    if (!fs.existsSync(file)) throw new PluginEntryError(entry, `plugin file not found: ${file}`, file);
    if (!fs.statSync(file).isFile()) throw new PluginEntryError(entry, `${file} is a folder; name the plugin file in it (or the package, by its name)`, file);
    return file;
  }
  ensureHooks();
  const from = pathToFileURL(path.join(fromDir, path.sep)).href;
  try {
    const resolved = (await import(`${RESOLVE_SCHEME}${encodeURIComponent(JSON.stringify({ name: entry, from }))}`)) as { default: string };
    return fileURLToPath(resolved.default);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND') {
      const name = entry
        .split('/')
        .slice(0, entry.startsWith('@') ? 2 : 1)
        .join('/');
      throw new PluginEntryError(
        entry,
        `plugin package '${entry}' is not installed in ${fromDir} or a folder above it; install it there (npm install ${name}), or write a path to a plugin file (./${entry}.ts)`,
      );
    }
    throw new PluginEntryError(entry, `plugin package '${entry}' cannot be imported from ${fromDir}: ${firstLine(e.message)}`);
  }
}

/** Imports a plugin file (or a test of one) as an ES module, through the hooks. */
export async function importPluginFile(file: string): Promise<Record<string, unknown>> {
  ensureHooks();
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

const firstLine = (text: string) => text.split('\n')[0]!;

/**
 * Why importing a plugin file failed, in one line: where in the file (line:column, when the error
 * says), what went wrong, and what to do.
 */
export function importFailure(file: string, err: unknown, what = 'plugin'): { where: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  const text = e instanceof Error ? e.message : String(err);
  const internal = text.match(/Package subpath '\.\/([^']+)' is not defined by "exports" in (.*?) imported from/);
  if (internal && internal[2] === fileURLToPath(new URL('package.json', installation))) {
    return {
      where: file,
      message: `imports 'ssfer/${internal[1]}', an internal path of ssfer; import from the public API instead: import { definePlugin, tf, … } from 'ssfer'`,
    };
  }
  if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
    return { where: file, message: `an import of the ${what} cannot be found: ${firstLine(text)}` };
  }
  // A syntax error found while compiling TypeScript (esbuild: "file:line:col: ERROR: text", the column counted from 0).
  const compiled = text.match(/:(\d+):(\d+): ERROR: (.*)/);
  if (compiled) return { where: `${file}:${compiled[1]}:${Number(compiled[2]) + 1}`, message: `the ${what} does not compile: ${compiled[3]}` };
  const name = e instanceof Error ? e.name : 'a value';
  const at = lineInStack(file, e instanceof Error ? e.stack : undefined);
  const kind = e instanceof SyntaxError ? `the ${what} does not parse` : `the ${what} threw while it was imported`;
  const advice = what === 'plugin' ? '; a plugin file runs when it is loaded, and should only define its plugins (export default definePlugin({ … }))' : '';
  return { where: at ? `${file}:${at}` : file, message: `${kind}: ${name}: ${firstLine(text)}${advice}` };
}

/** `line:col` of the first stack frame in `file`, if any. */
function lineInStack(file: string, stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  const url = pathToFileURL(file).href;
  for (const line of stack.split('\n')) {
    const at = line.indexOf(url) >= 0 ? line.indexOf(url) + url.length : line.indexOf(file) >= 0 ? line.indexOf(file) + file.length : -1;
    if (at < 0) continue;
    const m = line.slice(at).match(/^(?:\?[^:]*)?:(\d+):(\d+)/);
    if (m) return `${m[1]}:${m[2]}`;
  }
  return undefined;
}
