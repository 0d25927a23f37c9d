import { createHash } from 'node:crypto';

/** A plain JSON value: what recipes, configs and stage keys are made of. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Keys a config may never have: assigning them through a path reaches an object's prototype
 * (`--set __proto__.x=1` would set `Object.prototype.x` for the whole process).
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'prototype', 'constructor']);

/** The message for a reserved key, wherever it is written (a recipe key, a --set path or value). */
export function reservedKeyMessage(key: string): string {
  return `'${key}' cannot be a key: it names a JavaScript object's internals (${[...RESERVED_KEYS].join(', ')} are refused); rename or remove it`;
}

/** The dotted path of the first reserved key in a value, or undefined. */
export function findReservedKey(v: unknown, at = ''): string | undefined {
  if (Array.isArray(v)) {
    for (const [i, item] of v.entries()) {
      const found = findReservedKey(item, joinPath(at, i));
      if (found !== undefined) return found;
    }
  } else if (isObject(v)) {
    for (const [k, item] of Object.entries(v)) {
      if (RESERVED_KEYS.has(k)) return joinPath(at, k);
      const found = findReservedKey(item, joinPath(at, k));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Whether dotted `path` is `prefix` or lies under it (`a.b.c` under `a.b`, not under `a.bc`). */
export function pathWithin(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`);
}

/** `parent.key`, or `key` at the root (''). */
export function joinPath(parent: string, key: string | number): string {
  return parent === '' ? String(key) : `${parent}.${key}`;
}

/**
 * The value at a dotted path (`pipeline.supervised.lr`; with `lists`, a numeric part indexes a
 * list); undefined when something on the way is missing or not a container. The one way the
 * project reads a config by path.
 */
export function getPath(obj: unknown, dotted: string, lists = true): Json | undefined {
  if (dotted === '') return obj as Json;
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (lists && Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    // Own keys only: `constructor` or `__proto__` must never lead into a prototype.
    else if (isObject(cur) && Object.hasOwn(cur, part)) cur = cur[part];
    else return undefined;
  }
  return cur as Json | undefined;
}

/**
 * The value at a dotted path whose keys may themselves hold dots (a figure keyed by an ε of
 * 0.02: `analysis.fgsm-regions.inside.0.02`): at each level the longest run of parts that is a
 * key is taken. Own keys only; undefined when nothing matches.
 */
export function getFigurePath(obj: unknown, dotted: string): Json | undefined {
  const parts = dotted.split('.');
  const walk = (cur: unknown, from: number): Json | undefined => {
    if (from === parts.length) return cur as Json;
    if (!isObject(cur)) return undefined;
    for (let to = parts.length; to > from; to--) {
      const key = parts.slice(from, to).join('.');
      if (!Object.hasOwn(cur, key)) continue;
      const found = walk(cur[key], to);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(obj, 0);
}

/** Sets a dotted path, creating mappings on the way; returns false if a non-mapping is in the way. */
export function setPath(obj: object, dotted: string, value: Json): boolean {
  const parts = dotted.split('.');
  const reserved = parts.find((p) => RESERVED_KEYS.has(p));
  if (reserved !== undefined) throw new Error(`setPath ${dotted}: ${reservedKeyMessage(reserved)}`);
  let cur = obj as JsonObject;
  for (const part of parts.slice(0, -1)) {
    const next = Object.hasOwn(cur, part) ? cur[part] : undefined;
    if (next === undefined || next === null) {
      const created: JsonObject = {};
      cur[part] = created;
      cur = created;
    } else if (isObject(next)) {
      cur = next;
    } else {
      return false;
    }
  }
  cur[parts[parts.length - 1]!] = value;
  return true;
}

/** JSON text with every mapping's keys sorted (undefined reads as null), so equal values hash equally. */
function canonical(v: unknown): string {
  if (v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A short hash of a JSON value that does not depend on the order of its keys (stage keys, data keys, seeds). */
export function hashOf(v: unknown): string {
  return createHash('sha256').update(canonical(v)).digest('hex').slice(0, 16);
}
