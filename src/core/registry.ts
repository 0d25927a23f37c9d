import 'reflect-metadata';
import { tracedInstance } from './trace.ts';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Container } from 'inversify';
import { Ajv, type ValidateFunction } from 'ajv';
import { CORE_KINDS, KIND_NAME, KIND_SERVICE, serviceId, type KindDeclaration } from './kinds.ts';
import type { ContractOf, PluginContext, PluginDefinition, PluginModule, PluginSlot } from './plugin.ts';
import { importFailure, importPluginFile, PluginEntryError, resolvePluginEntry } from './plugin-import.ts';

/** Where a plugin definition (or a kind declaration) came from, for `ssfer plugins` and for error messages. */
export interface PluginOrigin {
  readonly file: string;
  readonly builtin: boolean;
}

/** A plugin as the container holds it: its definition and where it came from. */
export interface RegisteredPlugin {
  readonly definition: PluginDefinition;
  readonly origin: PluginOrigin;
}

/** A kind as the container holds it. */
export interface RegisteredKind extends KindDeclaration {
  readonly origin: PluginOrigin;
}

export class PluginLoadError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'PluginLoadError';
  }
}

const CORE_ORIGIN: PluginOrigin = { file: 'src/core/kinds.ts', builtin: true };

/**
 * A binding that answers a lookup by its name and also a lookup of every binding of the service
 * (an unnamed `getAll`), so the container both resolves a plugin and lists them.
 */
const namedOrListed = (name: string) => (request: { readonly name: string | number | symbol | undefined }) =>
  request.name === undefined || request.name === name;

/**
 * The plugin registry. Its inversify container is the one place plugins are known:
 *
 * - this container (the root, one per registry: per process, or per resolved recipe) holds the
 *   kind declarations under KIND_SERVICE and every plugin definition under its kind's service
 *   identifier, both bound by name;
 * - a run opens a child container (src/pipeline/scope.ts) that owns what the cells of one
 *   `ssfer run` share: the decoded data and the pre-trainings; it is released when the run ends.
 *
 * Nothing in the core names a concrete plugin; plugins are created per cell from their slot.
 */
export class PluginRegistry {
  readonly container = new Container();

  constructor() {
    for (const kind of CORE_KINDS) this.declareKind(kind, CORE_ORIGIN);
  }

  /** Adds a kind; a second declaration of the same kind is an error naming both files. */
  declareKind(kind: KindDeclaration, origin: PluginOrigin): void {
    if (!kind || typeof kind.name !== 'string' || !KIND_NAME.test(kind.name) || typeof kind.description !== 'string' || !kind.description) {
      throw new PluginLoadError(
        origin.file,
        `invalid kind declaration ${JSON.stringify(kind)}: name must be lower-case words joined by '-', description one line`,
      );
    }
    const previous = this.container.get<RegisteredKind>(KIND_SERVICE, { name: kind.name, optional: true });
    if (previous) throw new PluginLoadError(origin.file, `kind '${kind.name}' is already declared by ${previous.origin.file}; choose another name`);
    const registered: RegisteredKind = { name: kind.name, description: kind.description, origin };
    this.container.bind<RegisteredKind>(KIND_SERVICE).toConstantValue(registered).when(namedOrListed(kind.name));
  }

  hasKind(kind: string): boolean {
    return this.container.isBound(KIND_SERVICE, { name: kind });
  }

  /** Every kind, the core's first, then in the order plugin modules declared them. */
  kinds(): RegisteredKind[] {
    return this.container.getAll<RegisteredKind>(KIND_SERVICE);
  }

  register(def: PluginDefinition, origin: PluginOrigin): void {
    this.validateDefinition(def, origin.file);
    const previous = this.registered(def.kind, def.name);
    if (previous) {
      throw new PluginLoadError(origin.file, `${def.kind} plugin '${def.name}' is already registered by ${previous.origin.file}; choose another name`);
    }
    this.container.bind<RegisteredPlugin>(serviceId(def.kind)).toConstantValue({ definition: def, origin }).when(namedOrListed(def.name));
  }

  private registered(kind: string, name: string): RegisteredPlugin | undefined {
    return this.hasKind(kind) ? this.container.get<RegisteredPlugin>(serviceId(kind), { name, optional: true }) : undefined;
  }

  private all(kind: string): RegisteredPlugin[] {
    return this.hasKind(kind) ? this.container.getAll<RegisteredPlugin>(serviceId(kind), { optional: true }) : [];
  }

  has(kind: string, name: string): boolean {
    return this.registered(kind, name) !== undefined;
  }

  namesOf(kind: string): string[] {
    return this.all(kind)
      .map((r) => r.definition.name)
      .sort();
  }

  get(kind: string, name: string): PluginDefinition {
    const found = this.registered(kind, name);
    if (!found) throw new Error(`no ${kind} plugin named '${name}'; known: ${this.namesOf(kind).join(', ') || '(none)'}`);
    return found.definition;
  }

  origin(kind: string, name: string): PluginOrigin | undefined {
    return this.registered(kind, name)?.origin;
  }

  /** The definitions of one kind, or of every kind, by kind then name. */
  list(kind?: string): PluginDefinition[] {
    const kinds = kind ? [kind] : this.kinds().map((k) => k.name);
    return kinds.flatMap((k) => this.namesOf(k).map((n) => this.get(k, n)));
  }

  /**
   * Creates the plugin a slot chooses. `options` must already be validated and defaulted
   * (the recipe validator does both), so the factory sees complete options.
   */
  create<K extends string>(kind: K, slotValue: PluginSlot, ctx: Omit<PluginContext, 'resolve'>): ContractOf<K> {
    const def = this.get(kind, slotValue.use);
    const { use: _use, ...given } = slotValue;
    const options = this.withDefaults(def, given);
    const fullCtx: PluginContext = { ...ctx, resolve: (k, s) => this.create(k, s, ctx) };
    return tracedInstance(kind, def.create(options as never, fullCtx) as ContractOf<K>);
  }

  private readonly validators = new WeakMap<PluginDefinition, ValidateFunction>();

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

  /**
   * Loads plugin modules: every module is imported first and the kinds they declare are learnt,
   * then their definitions are registered, so a file may hold plugins of a kind another declares.
   * An entry is a file (relative to the current folder) or the name of an installed package.
   */
  async loadFiles(entries: readonly string[], builtin = false): Promise<PluginDefinition[]> {
    const modules: { file: string; mod: PluginModule }[] = [];
    for (const entry of entries) {
      const file = await pluginFile(entry);
      modules.push({ file, mod: await importPluginModule(file) });
    }
    for (const { file, mod } of modules) {
      if (mod.kinds !== undefined && !Array.isArray(mod.kinds)) throw new PluginLoadError(file, 'kinds must be a list of defineKind(name, description)');
      for (const kind of mod.kinds ?? []) this.declareKind(kind, { file, builtin });
    }
    const defs: PluginDefinition[] = [];
    for (const { file, mod } of modules) {
      const exported = mod.default ?? (mod as { plugins?: PluginModule['default'] }).plugins;
      if (exported === undefined) {
        if (mod.kinds?.length) continue; // a module that only declares kinds
        throw new PluginLoadError(file, noPluginExported(mod));
      }
      const list = (Array.isArray(exported) ? exported : [exported]) as unknown[];
      if (list.length === 0) throw new PluginLoadError(file, `its default export is an empty list; ${EXPECTED}`);
      list.forEach((def, i) => {
        const which = Array.isArray(exported) ? `item ${i + 1} of the default export` : 'the default export';
        this.register(asDefinition(def, which, file), { file, builtin });
        defs.push(def as PluginDefinition);
      });
    }
    return defs;
  }

  /** Loads every definition one module exports (default export: one definition or a list). */
  loadFile(file: string, builtin = false): Promise<PluginDefinition[]> {
    return this.loadFiles([file], builtin);
  }

  private validateDefinition(def: PluginDefinition, file: string): void {
    const problems: string[] = [];
    if (!def || typeof def !== 'object') throw new PluginLoadError(file, 'the export is not a plugin definition object');
    if (typeof def.kind !== 'string' || !this.hasKind(def.kind)) {
      problems.push(
        `kind must be one of ${this.kinds()
          .map((k) => k.name)
          .join(', ')} (got ${JSON.stringify(def.kind)})`,
      );
    }
    if (typeof def.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(def.name))
      problems.push(`name must be a word of letters, digits, '-', '_' or '.' (got ${JSON.stringify(def.name)})`);
    if (typeof def.description !== 'string' || def.description.length === 0) problems.push('description must be a one-line string');
    if (!def.options || typeof def.options !== 'object' || def.options.type !== 'object') problems.push("options must be a JSON Schema with type: 'object'");
    if (typeof def.create !== 'function') problems.push('create must be a function (options, ctx) => instance');
    if (def.figures !== undefined && typeof def.figures !== 'function') problems.push('figures, when given, must be a function (options) => the figure names');
    if (problems.length) throw new PluginLoadError(file, `invalid plugin definition: ${problems.join('; ')}`);
  }
}

const EXPECTED = 'expected export default definePlugin({ kind, name, description, options, create }), or a list of them';

const looksLikePlugin = (v: unknown): boolean => typeof v === 'object' && v !== null && 'kind' in v && 'name' in v && 'create' in v;

/** Why a module that exports no default plugin is refused, naming what it does export. */
function noPluginExported(mod: PluginModule): string {
  const names = Object.keys(mod).filter((k) => k !== 'default' && k !== 'kinds');
  if (names.length === 0) return `exports nothing; ${EXPECTED}`;
  const plugin = names.find((k) => looksLikePlugin((mod as Record<string, unknown>)[k]));
  if (plugin) return `exports the plugin '${plugin}' but has no default export; write export default ${plugin}`;
  return `exports no plugin (it exports ${names.map((n) => `'${n}'`).join(', ')}); ${EXPECTED}`;
}

/** A default export that is not a plugin definition object is refused with what it is instead. */
function asDefinition(def: unknown, which: string, file: string): PluginDefinition {
  if (typeof def === 'object' && def !== null && !Array.isArray(def)) {
    if (['kind', 'name', 'create'].some((k) => k in def)) return def as PluginDefinition;
    const keys = Object.keys(def);
    throw new PluginLoadError(file, `${which} is an object ${keys.length ? `with keys ${keys.join(', ')}` : 'without keys'}, not a plugin; ${EXPECTED}`);
  }
  const what =
    def === null
      ? 'null'
      : Array.isArray(def)
        ? 'a list inside the list'
        : typeof def === 'function'
          ? `a function (${def.name || 'anonymous'}): export the definition, not its create function`
          : `${typeof def} ${JSON.stringify(def)}`;
  throw new PluginLoadError(file, `${which} is ${what}, not a plugin; ${EXPECTED}`);
}

/** The file a plugin entry names, relative to the current folder (a recipe's entries arrive absolute). */
async function pluginFile(entry: string): Promise<string> {
  try {
    return await resolvePluginEntry(entry, process.cwd());
  } catch (err) {
    if (err instanceof PluginEntryError)
      throw new PluginLoadError(
        entry,
        err.file ? `${err.message}; check the path (relative to the recipe, or to the current folder for --plugin)` : err.message,
      );
    throw err;
  }
}

async function importPluginModule(file: string): Promise<PluginModule> {
  let mod: Record<string, unknown>;
  try {
    mod = await importPluginFile(file);
  } catch (err) {
    const { where, message } = importFailure(file, err);
    throw new PluginLoadError(where, message);
  }
  // A CommonJS module compiled from `export default` (exports.default beside __esModule).
  const inner = mod.default as { __esModule?: boolean; default?: unknown } | undefined;
  return (inner && typeof inner === 'object' && inner.__esModule && 'default' in inner ? inner : mod) as PluginModule;
}

const optionsAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false, allowUnionTypes: true });

/** Nested plugin slots are checked when their own plugin is created; here they are plain objects. */
function stripSlots(schema: Record<string, unknown>): Record<string, unknown> {
  if ('x-slot' in schema) return { type: 'object', ...(schema.default !== undefined ? { default: schema.default } : {}) };
  if (schema.type === 'array' && typeof schema.items === 'object' && schema.items !== null && 'x-slot' in schema.items)
    return { ...schema, items: { type: 'object' } };
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (!props) return schema;
  return { ...schema, properties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, stripSlots(v)])) };
}

const pluginsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../plugins');

/**
 * The built-in plugin files: `plugins/<folder>/<name>.ts` for every folder (conventionally one
 * per kind). Sub-folders hold the plugins' internals and are not scanned.
 */
export function builtinPluginFiles(root = pluginsRoot): string[] {
  const files: string[] = [];
  for (const folder of fs.readdirSync(root, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    const dir = path.join(root, folder.name);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isFile() && /\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path.join(dir, entry.name));
    }
  }
  return files.sort();
}

/** A registry with every built-in plugin plus the user's plugin files. */
export async function createRegistry(extraFiles: readonly string[] = []): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  await registry.loadFiles(builtinPluginFiles(), true);
  await registry.loadFiles(extraFiles, false);
  return registry;
}

let shared: Promise<PluginRegistry> | undefined;

/** What `createPlugin` hands a factory unless told otherwise. */
const TEST_CONTEXT = { seed: 2024, scale: 'smoke', recipeDir: '.' };

/**
 * A plugin created outside a recipe, as a plugin's own test creates it: from its definition
 * (registered beside the built-ins, so the plugins its slots name resolve), or a built-in by kind
 * and slot (`createPlugin('backbone', { use: 'linear', image_size: 16 })`). The options are
 * checked and defaulted as a recipe's would be; the context is the given one over
 * `{ seed: 2024, scale: 'smoke', recipeDir: '.' }`.
 */
export async function createPlugin<K extends string, O, I>(
  definition: PluginDefinition<O, I> & { readonly kind: K },
  options?: Readonly<Record<string, unknown>>,
  ctx?: Partial<Omit<PluginContext, 'resolve'>>,
): Promise<I>;
export async function createPlugin<K extends string>(kind: K, slot: PluginSlot | string, ctx?: Partial<Omit<PluginContext, 'resolve'>>): Promise<ContractOf<K>>;
export async function createPlugin(
  what: string | PluginDefinition,
  given?: Readonly<Record<string, unknown>> | string,
  ctx: Partial<Omit<PluginContext, 'resolve'>> = {},
): Promise<unknown> {
  const registry = await (shared ??= createRegistry());
  const context = { ...TEST_CONTEXT, ...ctx };
  if (typeof what === 'string') {
    const slotValue = typeof given === 'string' ? { use: given } : (given as PluginSlot | undefined);
    if (!slotValue || typeof slotValue.use !== 'string')
      throw new Error(`createPlugin('${what}', slot): the slot names a plugin, as { use: name, ...options }`);
    if (!registry.has(what, slotValue.use)) registry.get(what, slotValue.use); // throws: no such plugin, with the known ones
    return registry.create(what, slotValue, context);
  }
  const origin = registry.origin(what.kind, what.name);
  if (!origin) registry.register(what, { file: '(createPlugin)', builtin: false });
  else if (registry.get(what.kind, what.name) !== what) {
    throw new Error(`createPlugin: a different ${what.kind} plugin named '${what.name}' is already registered by ${origin.file}; choose another name`);
  }
  return registry.create(what.kind, { ...((given as Record<string, unknown> | undefined) ?? {}), use: what.name }, context);
}
