import { getPath, isObject, joinPath, pathWithin, setPath, type Json, type JsonObject } from '../core/json.ts';
import type { Loc } from './diagnostics.ts';

/** A plain JSON value plus where each of its parts was written, keyed by dotted path. */
export interface Located {
  value: JsonObject;
  /** Position of each value, by dotted path ('' is the document). */
  values: Map<string, Loc>;
  /** Position of each mapping key, by the dotted path of its value. */
  keys: Map<string, Loc>;
  /**
   * Options left in a plugin slot by a plugin that was switched for another (by a later file, a
   * scale, a grid value or --set). They are kept where the new plugin has the same option and
   * dropped silently where it has not, so switching plugins never trips on the old one's options.
   */
  inherited?: Set<string>;
}

export function clone<T extends Json>(v: T): T {
  return structuredClone(v);
}

function dropUnder(map: Map<string, Loc>, prefix: string): void {
  for (const k of [...map.keys()]) if (pathWithin(k, prefix)) map.delete(k);
}

/**
 * Deep-merges `over` onto `base`: mappings merge key by key, lists and scalars replace.
 * Positions follow the values: a replaced subtree takes the positions of what replaced it.
 */
export function mergeLocated(base: Located, over: Located, from = ''): Located {
  const out: Located = {
    value: clone(base.value),
    values: new Map(base.values),
    keys: new Map(base.keys),
    inherited: new Set([...(base.inherited ?? []), ...(over.inherited ?? [])]),
  };
  const overRoot = from === '' ? over.value : getPath(over.value, from);
  if (isObject(overRoot)) mergeInto(out, over, overRoot, from, '');
  return out;
}

/** A copy of `l` with one path set to a value written at `loc` (a grid entry or a --set flag). */
export function withValue(l: Located, dotted: string, value: Json, loc: Loc | undefined): Located | undefined {
  const out: Located = { value: clone(l.value), values: new Map(l.values), keys: new Map(l.keys), inherited: new Set(l.inherited ?? []) };
  out.inherited!.delete(dotted);
  dropUnder(out.values, dotted);
  if (!setPath(out.value, dotted, clone(value))) return undefined;
  if (loc) {
    out.values.set(dotted, loc);
    if (!out.keys.has(dotted)) out.keys.set(dotted, loc);
  }
  return out;
}

function mergeInto(out: Located, over: Located, src: JsonObject, srcPath: string, dstPath: string): void {
  for (const [key, v] of Object.entries(src)) {
    const s = joinPath(srcPath, key);
    const d = joinPath(dstPath, key);
    const existing = getPath(out.value, d);
    if (isObject(v) && isObject(existing)) {
      if (switchesPlugin(existing, v)) markInherited(out, d, existing, v);
      copyLoc(over, out, s, d, false);
      mergeInto(out, over, v, s, d);
      continue;
    }
    dropUnder(out.values, d);
    dropUnder(out.keys, d);
    out.inherited?.delete(d);
    setPath(out.value, d, clone(v));
    copyLoc(over, out, s, d, true);
  }
}

/**
 * A plugin slot that names another plugin replaces the slot instead of merging into it: the old
 * plugin's options mean nothing to the new one (like choosing another option of a config group).
 * A slot written without `use` holds the default plugin's options, so naming a plugin there is a
 * switch too.
 */
function switchesPlugin(existing: JsonObject, incoming: JsonObject): boolean {
  return typeof incoming.use === 'string' && incoming.use !== existing.use;
}

function markInherited(out: Located, slotPath: string, existing: JsonObject, incoming: JsonObject): void {
  out.inherited ??= new Set();
  for (const key of Object.keys(existing)) {
    if (key !== 'use' && !(key in incoming)) out.inherited.add(joinPath(slotPath, key));
  }
}

function copyLoc(from: Located, to: Located, s: string, d: string, subtree: boolean): void {
  for (const [mapName, mapFrom] of [
    ['values', from.values],
    ['keys', from.keys],
  ] as const) {
    const mapTo = to[mapName];
    for (const [k, loc] of mapFrom) {
      if (k === s) mapTo.set(d, loc);
      else if (subtree && k.startsWith(`${s}.`)) mapTo.set(d + k.slice(s.length), loc);
    }
  }
}

/** The position of a path, or of its nearest written ancestor. */
export function locate(l: Located, dotted: string, preferKey = false): Loc | undefined {
  let p = dotted;
  for (;;) {
    const loc = (preferKey ? l.keys.get(p) : undefined) ?? l.values.get(p) ?? l.keys.get(p);
    if (loc) return loc;
    if (p === '') return undefined;
    const i = p.lastIndexOf('.');
    p = i < 0 ? '' : p.slice(0, i);
  }
}

/**
 * Sets a path the way `extends` merges: a mapping merges into an existing mapping key by key,
 * anything else replaces. Used for grid values and --set overrides.
 */
export function assign(l: Located, dotted: string, value: Json, loc: Loc | undefined): Located | undefined {
  const existing = getPath(l.value, dotted);
  if (dotted.endsWith('.use') && typeof value === 'string') {
    const slotPath = dotted.slice(0, -'.use'.length);
    const slotValue = getPath(l.value, slotPath);
    if (isObject(slotValue) && switchesPlugin(slotValue, { use: value })) {
      const out = withValue(l, dotted, value, loc);
      if (out) markInherited(out, slotPath, slotValue, { use: value });
      return out;
    }
  }
  if (isObject(value) && isObject(existing)) {
    if (switchesPlugin(existing, value)) {
      const marked: Located = { ...l, inherited: new Set(l.inherited ?? []) };
      markInherited(marked, dotted, existing, value);
      l = marked;
    }
    let out: Located | undefined = l;
    for (const [k, v] of Object.entries(value)) {
      out = assign(out, joinPath(dotted, k), v, loc);
      if (!out) return undefined;
    }
    return out;
  }
  return withValue(l, dotted, value, loc);
}
