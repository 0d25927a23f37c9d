import fs from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { displayFile, RecipeError, type Diagnostic, type Loc } from './diagnostics.ts';
import { isObject, joinPath, RESERVED_KEYS, reservedKeyMessage, type Json, type JsonObject } from '../core/json.ts';
import { mergeLocated, type Located } from './located.ts';

/** Parses one YAML text into a value with the position of every key and value. */
export function parseLocated(text: string, file: string): Located {
  const lineCounter = new LineCounter();
  // Duplicate keys are found below, with a set per mapping: the parser's own check compares
  // every key with every other one, which takes minutes for a recipe of many keys.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const problems = doc.errors;
  if (problems.length > 0) {
    throw new RecipeError(
      problems.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { loc: { file, line: pos.line, col: pos.col }, path: 'yaml', message: e.message.split('\n')[0]! };
      }),
    );
  }
  const values = new Map<string, Loc>();
  const keys = new Map<string, Loc>();
  const at = (offset: number | undefined): Loc => {
    const p = lineCounter.linePos(offset ?? 0);
    return { file, line: p.line, col: p.col };
  };
  const diagnostics: Diagnostic[] = [];
  const walk = (node: unknown, dotted: string): Json => {
    const n = node as YamlNode | null;
    if (n && 'range' in n && n.range) values.set(dotted, at(n.range[0]));
    if (isMap(n)) {
      // Without a prototype: no key of a recipe can reach Object.prototype.
      const out: JsonObject = Object.create(null) as JsonObject;
      const seen = new Set<string>();
      for (const pair of n.items) {
        const keyNode = pair.key as YamlNode | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const child = joinPath(dotted, key);
        if (keyNode && 'range' in keyNode && keyNode.range) keys.set(child, at(keyNode.range[0]));
        if (seen.has(key)) {
          diagnostics.push({ loc: keys.get(child) ?? at(0), path: 'yaml', message: 'Map keys must be unique' });
          continue;
        }
        seen.add(key);
        if (RESERVED_KEYS.has(key)) {
          diagnostics.push({ loc: keys.get(child) ?? at(0), path: child, message: reservedKeyMessage(key) });
          continue;
        }
        out[key] = walk(pair.value, child);
        if (pair.value === null) values.set(child, keys.get(child) ?? at(0));
      }
      return out;
    }
    if (isSeq(n)) return n.items.map((item, i) => walk(item, joinPath(dotted, i)));
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      diagnostics.push({ loc: at(n.range?.[0]), path: dotted, message: `unsupported YAML value of type ${typeof v}` });
      return null;
    }
    if (n === null || n === undefined) return null;
    diagnostics.push({
      loc: at((n as { range?: number[] }).range?.[0]),
      path: dotted,
      message: 'unsupported YAML node (aliases and tags are not allowed in recipes)',
    });
    return null;
  };
  const value = walk(doc.contents, '');
  if (diagnostics.length) throw new RecipeError(diagnostics);
  if (value === null) return { value: {}, values, keys };
  if (!isObject(value)) {
    throw new RecipeError([{ loc: values.get('') ?? { file, line: 1, col: 1 }, path: '', message: 'a recipe must be a YAML mapping (key: value lines)' }]);
  }
  return { value, values, keys };
}

function readRecipeText(file: string, from?: { loc: Loc; path: string }): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new RecipeError([
      {
        loc: from?.loc ?? { file, line: 1, col: 1 },
        path: from?.path ?? '',
        message: `cannot read recipe '${displayFile(file)}' (${reason})${from ? '; fix the path, which is relative to the recipe that names it' : ''}`,
      },
    ]);
  }
}

/**
 * Loads a recipe file with its `extends:` chain: each base (path relative to the file naming it)
 * is loaded first, later bases override earlier ones, the file itself overrides them all.
 * Mappings merge, lists replace. `extends` is removed from the result.
 */
export function loadRecipeFile(file: string): Located {
  return loadWithStack(path.resolve(file), [], undefined);
}

function loadWithStack(file: string, stack: string[], from: { loc: Loc; path: string } | undefined): Located {
  if (stack.includes(file)) {
    const cycle = [...stack.slice(stack.indexOf(file)), file].map(displayFile).join(' → ');
    throw new RecipeError([{ loc: from?.loc, path: from?.path ?? 'extends', message: `extends cycle: ${cycle}; remove one of these extends entries` }]);
  }
  const own = parseLocated(readRecipeText(file, from), file);
  const ext = own.value.extends;
  if (ext === undefined) return own;
  const list = typeof ext === 'string' ? [ext] : ext;
  if (!Array.isArray(list) || !list.every((e) => typeof e === 'string')) {
    throw new RecipeError([{ loc: own.values.get('extends'), path: 'extends', message: 'must be a file path or a list of file paths' }]);
  }
  let merged: Located = { value: {}, values: new Map(), keys: new Map() };
  const diagnostics: Diagnostic[] = [];
  (list as string[]).forEach((rel, i) => {
    const entryPath = typeof ext === 'string' ? 'extends' : `extends.${i}`;
    const target = path.resolve(path.dirname(file), rel);
    // Only recipe files: reading any other file as YAML would print its lines in the messages.
    if (!/\.ya?ml$/i.test(target)) {
      diagnostics.push({
        loc: own.values.get(entryPath),
        path: entryPath,
        message: `'${rel}' is not a recipe: extends names .yaml or .yml files (relative to the recipe that names them)`,
      });
      return;
    }
    try {
      merged = mergeLocated(merged, loadWithStack(target, [...stack, file], { loc: own.values.get(entryPath)!, path: entryPath }));
    } catch (err) {
      if (err instanceof RecipeError) diagnostics.push(...err.diagnostics);
      else throw err;
    }
  });
  if (diagnostics.length) throw new RecipeError(diagnostics);
  const { extends: _dropped, ...rest } = own.value;
  const ownWithout: Located = { value: rest, values: own.values, keys: own.keys };
  const out = mergeLocated(merged, ownWithout);
  for (const m of [out.values, out.keys]) for (const k of [...m.keys()]) if (k === 'extends' || k.startsWith('extends.')) m.delete(k);
  return out;
}
