import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { Container } from 'inversify';
import { Ajv, type ValidateFunction } from 'ajv';
import { KINDS, ServiceIds, isKind, type Kind } from './kinds.ts';
import type { PluginContext, PluginDefinition, PluginSlot } from './plugin.ts';

/** Where a plugin definition came from, for `ssfer plugins` and for error messages. */
export interface PluginOrigin {
  readonly file: string;
  readonly builtin: boolean;
}

export class PluginLoadError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'PluginLoadError';
  }
}

/**
 * The plugin registry: an inversify container in which every plugin definition is bound under
 * its kind's service identifier with its name as the binding name. Plugins are looked up (and
 * instantiated per cell) only through the container; nothing in the core names a concrete plugin.
 */
export class PluginRegistry {
  readonly container = new Container();
  private readonly names = new Map<Kind, Map<string, PluginOrigin>>(KINDS.map((k) => [k, new Map()]));

  register(def: PluginDefinition, origin: PluginOrigin): void {
    validateDefinition(def, origin.file);
    const names = this.names.get(def.kind)!;
    const previous = names.get(def.name);
    if (previous) {
      throw new PluginLoadError(origin.file, `${def.kind} plugin '${def.name}' is already registered by ${previous.file}; choose another name`);
    }
    names.set(def.name, origin);
    this.container.bind<PluginDefinition>(ServiceIds[def.kind]).toConstantValue(def).whenNamed(def.name);
  }

  has(kind: Kind, name: string): boolean {
    return this.names.get(kind)!.has(name);
  }

  namesOf(kind: Kind): string[] {
    return [...this.names.get(kind)!.keys()].sort();
  }

  get(kind: Kind, name: string): PluginDefinition {
    if (!this.has(kind, name)) throw new Error(`no ${kind} plugin named '${name}'; known: ${this.namesOf(kind).join(', ') || '(none)'}`);
    return this.container.get<PluginDefinition>(ServiceIds[kind], { name });
  }

  origin(kind: Kind, name: string): PluginOrigin | undefined {
    return this.names.get(kind)!.get(name);
  }

  list(kind?: Kind): PluginDefinition[] {
    const kinds = kind ? [kind] : KINDS;
    return kinds.flatMap((k) => this.namesOf(k).map((n) => this.get(k, n)));
  }

  /**
   * Creates the plugin a slot chooses. `options` must already be validated and defaulted
   * (the recipe validator does both), so the factory sees complete options.
   */
  create<T>(kind: Kind, slotValue: PluginSlot, ctx: Omit<PluginContext, 'resolve'>): T {
    const def = this.get(kind, slotValue.use);
    const { use: _use, ...given } = slotValue;
    const options = this.withDefaults(def, given);
    const fullCtx: PluginContext = { ...ctx, resolve: <U>(k: Kind, s: PluginSlot) => this.create<U>(k, s, ctx) };
    return def.create(options, fullCtx) as T;
  }

  private readonly validators = new Map<PluginDefinition, ValidateFunction>();

  /**
   * Options with the schema's defaults filled in and checked. Recipes arrive here already
   * validated; this makes a plugin created from code (a nested slot, a test) just as safe.
   */
  private withDefaults(def: PluginDefinition, given: Record<string, unknown>): Record<string, unknown> {
    let validate = this.validators.get(def);
    if (!validate) {
      validate = optionsAjv.compile({ ...stripSlots(def.options), additionalProperties: false });
      this.validators.set(def, validate);
    }
    const options = structuredClone(given);
    if (!validate(options)) {
      const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '(options)'} ${e.message ?? e.keyword}`);
      throw new Error(`${def.kind} plugin '${def.name}': invalid options: ${problems.join('; ')}`);
    }
    return options;
  }

  /** Loads every definition a module exports (default export: one definition or a list). */
  async loadFile(file: string, builtin = false): Promise<PluginDefinition[]> {
    const abs = path.resolve(file);
    if (!fs.existsSync(abs)) throw new PluginLoadError(file, 'plugin file not found; check the path (relative to the recipe, or to the current folder for --plugin)');
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
    } catch (err) {
      throw new PluginLoadError(file, `failed to load: ${(err as Error).message.split('\n')[0]}`);
    }
    const exported = mod.default ?? mod.plugins;
    const defs = (Array.isArray(exported) ? exported : [exported]) as PluginDefinition[];
    if (exported === undefined) {
      throw new PluginLoadError(file, 'exports no plugin; export default definePlugin({ kind, name, description, options, create })');
    }
    for (const def of defs) this.register(def, { file: abs, builtin });
    return defs;
  }
}

const optionsAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false, allowUnionTypes: true });

/** Nested plugin slots are checked when their own plugin is created; here they are plain objects. */
function stripSlots(schema: Record<string, unknown>): Record<string, unknown> {
  if ('x-slot' in schema) return { type: 'object', ...(schema.default !== undefined ? { default: schema.default } : {}) };
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (!props) return schema;
  return { ...schema, properties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, stripSlots(v)])) };
}

function validateDefinition(def: PluginDefinition, file: string): void {
  const problems: string[] = [];
  if (!def || typeof def !== 'object') throw new PluginLoadError(file, 'the export is not a plugin definition object');
  if (typeof def.kind !== 'string' || !isKind(def.kind)) problems.push(`kind must be one of ${KINDS.join(', ')} (got ${JSON.stringify(def.kind)})`);
  if (typeof def.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(def.name)) problems.push(`name must be a word of letters, digits, '-', '_' or '.' (got ${JSON.stringify(def.name)})`);
  if (typeof def.description !== 'string' || def.description.length === 0) problems.push('description must be a one-line string');
  if (!def.options || typeof def.options !== 'object' || def.options.type !== 'object') problems.push("options must be a JSON Schema with type: 'object'");
  if (typeof def.create !== 'function') problems.push('create must be a function (options, ctx) => instance');
  if (problems.length) throw new PluginLoadError(file, `invalid plugin definition: ${problems.join('; ')}`);
}

const pluginsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../plugins');

/**
 * The built-in plugin files: `plugins/<kind>/<name>.ts` for every kind folder. Sub-folders hold
 * the plugins' internals and are not scanned.
 */
export function builtinPluginFiles(root = pluginsRoot): string[] {
  const files: string[] = [];
  for (const kind of KINDS) {
    const dir = path.join(root, kind);
    if (!fs.existsSync(dir)) continue;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isFile() && /\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path.join(dir, entry.name));
    }
  }
  return files.sort();
}

/** A registry with every built-in plugin plus the user's plugin files. */
export async function createRegistry(extraFiles: readonly string[] = []): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  for (const f of builtinPluginFiles()) await registry.loadFile(f, true);
  for (const f of extraFiles) await registry.loadFile(f, false);
  return registry;
}
