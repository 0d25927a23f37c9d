import { createHash } from 'node:crypto';

/** A plain JSON value: what recipes, configs and stage keys are made of. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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
    else if (isObject(cur)) cur = cur[part];
    else return undefined;
  }
  return cur as Json | undefined;
}

/** Sets a dotted path, creating mappings on the way; returns false if a non-mapping is in the way. */
export function setPath(obj: object, dotted: string, value: Json): boolean {
  const parts = dotted.split('.');
  let cur = obj as JsonObject;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
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
