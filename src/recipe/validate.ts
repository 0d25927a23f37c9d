import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { JsonSchema } from '../core/schema.ts';
import type { PluginRegistry } from '../core/registry.ts';
import { closest, type Diagnostic } from './diagnostics.ts';
import { getPath, isObject, joinPath, setPath, type JsonObject } from '../core/json.ts';
import { clone, locate, type Located } from './located.ts';
import { coreSchema } from './schema.ts';

/** A plugin choice found in a resolved config: which kind, where, and its resolved options. */
export interface SlotChoice {
  readonly kind: string;
  readonly path: string;
  readonly use: string;
}

export interface Validated {
  readonly config: JsonObject;
  readonly slots: readonly SlotChoice[];
  readonly diagnostics: readonly Diagnostic[];
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, allowUnionTypes: true, verbose: true });
const compiled = new Map<string, ValidateFunction>();

/**
 * Validates one fully assembled config (a cell: recipe + scale + grid values + overrides).
 * Plugin slots are resolved against the registry; defaults from every schema are filled in.
 */
export function validateConfig(input: Located, registry: PluginRegistry): Validated {
  const config = clone(input.value);
  const diagnostics: Diagnostic[] = [];
  const slots: SlotChoice[] = [];
  const schema = assemble(coreSchema() as JsonSchema, config, '', input, registry, diagnostics, slots);
  const key = JSON.stringify(slots.map((s) => [s.path, s.use]));
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  // JSON has no Infinity or NaN, and no option means them: `.inf`, `.nan` or `1e309` is refused
  // wherever it is written, plugin options included, before the schema's own checks.
  const nonFinite = nonFiniteNumbers(config, '');
  for (const p of nonFinite) diagnostics.push({ loc: locate(input, p), path: p, message: `must be a finite number (got ${show(getPath(config, p))})` });
  if (!validate(config)) {
    for (const e of dedupe(validate.errors ?? [])) if (!nonFinite.includes(dotted(e.instancePath))) diagnostics.push(toDiagnostic(e, input));
  }
  checkRequirements(slots, input, registry, diagnostics);
  return { config, slots, diagnostics };
}

/** A plugin that needs something of another slot's plugin (MAE: a backbone with patch tokens). */
function checkRequirements(slots: readonly SlotChoice[], located: Located, registry: PluginRegistry, diagnostics: Diagnostic[]): void {
  const chosen = new Map(slots.map((s) => [s.path, s]));
  for (const s of slots) {
    for (const need of registry.get(s.kind, s.use).requires ?? []) {
      const other = chosen.get(need.path);
      if (!other || (registry.get(other.kind, other.use).provides ?? []).includes(need.provides)) continue;
      diagnostics.push({
        loc: locate(located, joinPath(s.path, 'use')),
        path: joinPath(s.path, 'use'),
        message: `${s.kind} '${s.use}' needs a ${other.kind} that provides '${need.provides}', but ${need.path} is '${other.use}': ${need.because}`,
      });
    }
  }
}

/** Walks the schema alongside the config, replacing `x-slot` markers by the chosen plugin's schema. */
function assemble(
  schema: JsonSchema,
  config: JsonObject,
  at: string,
  located: Located,
  registry: PluginRegistry,
  diagnostics: Diagnostic[],
  slots: SlotChoice[],
): JsonSchema {
  const kind = schema['x-slot'] as string | undefined;
  if (kind) return assembleSlot(kind, schema, config, at, located, registry, diagnostics, slots);
  const itemKind = schema.type === 'array' && isObject(schema.items) ? (schema.items['x-slot'] as string | undefined) : undefined;
  if (itemKind) return assembleSlotList(itemKind, schema, config, at, located, registry, diagnostics, slots);
  // A mapping keyed by plugin names (data.roots): its keys must name plugins that have the option.
  const keyedBy = schema['x-keys-of'] as { kind: string; option: string } | undefined;
  if (keyedBy) {
    const known = registry
      .namesOf(keyedBy.kind)
      .filter((n) => isObject((registry.get(keyedBy.kind, n).options.properties as Record<string, unknown> | undefined)?.[keyedBy.option]));
    const current = getPath(config, at);
    for (const key of isObject(current) ? Object.keys(current) : []) {
      if (known.includes(key)) continue;
      const suggestion = closest(key, known);
      diagnostics.push({
        loc: locate(located, joinPath(at, key), true),
        path: joinPath(at, key),
        message: `no ${keyedBy.kind} '${key}' with a ${keyedBy.option} option${suggestion ? ` — did you mean '${suggestion}'?` : ''} known: ${known.join(', ')}`,
      });
    }
    return schema;
  }
  if (schema.type !== 'object' || !isObject(schema.properties)) return schema;
  const here = at === '' ? config : getPath(config, at);
  if (here === undefined && schema.default !== undefined && at !== '') {
    setPath(config, at, clone(schema.default as JsonObject));
  }
  const current = at === '' ? config : getPath(config, at);
  if (current !== undefined && !isObject(current)) return schema; // ajv reports the wrong type
  const props: Record<string, JsonSchema> = {};
  for (const [key, sub] of Object.entries(schema.properties as Record<string, JsonSchema>)) {
    const v = isObject(getPath(config, at)) ? getPath(config, joinPath(at, key)) : undefined;
    props[key] =
      v === undefined && !sub['x-slot'] && sub.default === undefined ? sub : assemble(sub, config, joinPath(at, key), located, registry, diagnostics, slots);
  }
  return { ...schema, properties: props };
}

function assembleSlot(
  kind: string,
  schema: JsonSchema,
  config: JsonObject,
  at: string,
  located: Located,
  registry: PluginRegistry,
  diagnostics: Diagnostic[],
  slots: SlotChoice[],
): JsonSchema {
  let value = getPath(config, at);
  // A bare name is shorthand for { use: name }.
  if (typeof value === 'string') {
    value = { use: value };
    setPath(config, at, value);
    if (located.values.has(at)) located.values.set(joinPath(at, 'use'), located.values.get(at)!);
  }
  if (value === undefined && schema.default !== undefined) {
    value = clone(schema.default as JsonObject);
    setPath(config, at, value);
  }
  // A slot written without `use:` keeps the default plugin, with what is written over its default options.
  if (isObject(value) && value.use === undefined && isObject(schema.default) && typeof schema.default.use === 'string') {
    value = { ...clone(schema.default as JsonObject), ...value };
    setPath(config, at, value);
  }
  const known = registry.namesOf(kind);
  const permissive: JsonSchema = { type: 'object', required: ['use'], properties: { use: { type: 'string' } } };
  if (!isObject(value) || typeof value.use !== 'string') return permissive; // ajv reports the shape
  const use = value.use;
  if (!registry.has(kind, use)) {
    const suggestion = closest(use, known);
    diagnostics.push({
      loc: locate(located, joinPath(at, 'use')),
      path: joinPath(at, 'use'),
      message: `unknown ${kind} '${use}'${suggestion ? ` — did you mean '${suggestion}'?` : ''} known: ${known.join(', ') || '(none registered)'}`,
    });
    return { type: 'object' };
  }
  slots.push({ kind, path: at, use });
  const def = registry.get(kind, use);
  const options = def.options;
  const declared = (options.properties ?? {}) as Record<string, JsonSchema>;
  for (const key of Object.keys(value)) {
    // Only a real option of some other plugin of this kind is dropped; a typo is still reported.
    const optionOfAnother = registry.list(kind).some((d) => key in ((d.options.properties ?? {}) as object));
    if (key !== 'use' && !(key in declared) && optionOfAnother && located.inherited?.has(joinPath(at, key))) delete value[key];
  }
  const props: Record<string, JsonSchema> = { use: { type: 'string', description: `${kind} plugin name` } };
  for (const [key, sub] of Object.entries((options.properties ?? {}) as Record<string, JsonSchema>)) {
    props[key] = assemble(sub, config, joinPath(at, key), located, registry, diagnostics, slots);
  }
  return {
    ...options,
    type: 'object',
    properties: props,
    required: ['use', ...((options.required as string[] | undefined) ?? [])],
    additionalProperties: false,
  };
}

/**
 * A list of slots (`evaluation.analyses`): each entry is a slot of the kind, checked against its
 * plugin's options; a plugin listed twice is refused (an entry's figures are keyed by its name).
 */
function assembleSlotList(
  kind: string,
  schema: JsonSchema,
  config: JsonObject,
  at: string,
  located: Located,
  registry: PluginRegistry,
  diagnostics: Diagnostic[],
  slots: SlotChoice[],
): JsonSchema {
  const list = getPath(config, at);
  if (!Array.isArray(list)) return schema; // absent: ajv fills the default; another type: ajv reports it
  const items: JsonSchema[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    const p = joinPath(at, i);
    // A bare name is shorthand for { use: name }.
    if (typeof entry === 'string') {
      list[i] = { use: entry };
      if (located.values.has(p)) located.values.set(joinPath(p, 'use'), located.values.get(p)!);
    }
    items.push(assembleSlot(kind, schema.items as JsonSchema, config, p, located, registry, diagnostics, slots));
    const use = (list[i] as JsonObject | undefined)?.use;
    if (typeof use !== 'string') return;
    const first = seen.get(use);
    if (first !== undefined)
      diagnostics.push({
        loc: locate(located, joinPath(p, 'use')),
        path: joinPath(p, 'use'),
        message: `${kind} '${use}' is listed twice (also at ${joinPath(at, first)}); what an entry reports is keyed by its plugin's name, so list each once`,
      });
    else seen.set(use, i);
  });
  return { ...schema, items, additionalItems: false };
}

function nonFiniteNumbers(v: unknown, at: string): string[] {
  if (typeof v === 'number') return Number.isFinite(v) ? [] : [at];
  if (Array.isArray(v)) return v.flatMap((item, i) => nonFiniteNumbers(item, joinPath(at, i)));
  if (isObject(v)) return Object.entries(v).flatMap(([k, item]) => nonFiniteNumbers(item, joinPath(at, k)));
  return [];
}

/** A value as the recipe wrote it: NaN and Infinity by name (JSON would print them as null). */
function show(v: unknown): string {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v ?? null);
}

function dedupe(errors: ErrorObject[]): ErrorObject[] {
  // oneOf failures repeat every branch's complaint; keep the most specific ones.
  const hasSpecific = new Set(errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf').map((e) => e.instancePath));
  const seen = new Set<string>();
  return errors.filter((e) => {
    if ((e.keyword === 'oneOf' || e.keyword === 'anyOf') && hasSpecific.has(e.instancePath)) return false;
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function toDiagnostic(e: ErrorObject, located: Located): Diagnostic {
  const p = dotted(e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys(((e.parentSchema as JsonSchema | undefined)?.properties ?? {}) as object);
      const suggestion = closest(key, allowed);
      const full = joinPath(p, key);
      return {
        loc: locate(located, full, true),
        path: full,
        message: `unknown key '${key}'${suggestion ? ` — did you mean '${suggestion}'?` : ''}${allowed.length ? ` allowed here: ${allowed.join(', ')}` : ' (nothing else is allowed here)'}`,
      };
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { loc: locate(located, p), path: joinPath(p, missing), message: `is required` };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return {
        loc: locate(located, p),
        path: p,
        message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (got ${show(getPath(located.value, p))})`,
      };
    }
    case 'type': {
      const got = getPath(located.value, p);
      return { loc: locate(located, p), path: p, message: `${e.message} (got ${show(got)})` };
    }
    default: {
      const bound = (e.parentSchema as JsonSchema | undefined)?.['x-bound'];
      const limit = 'limit' in (e.params as object);
      return {
        loc: locate(located, p),
        path: p,
        message: `${e.message ?? e.keyword}${limit ? ` (got ${show(getPath(located.value, p))})` : ''}${limit && typeof bound === 'string' ? `: ${bound}` : ''}`,
      };
    }
  }
}
