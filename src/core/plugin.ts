import type { Kind } from './kinds.ts';

/** A JSON Schema fragment (draft 2020-12 subset understood by ajv). */
export type JsonSchema = { [key: string]: unknown };

/** Random numbers for a cell, derived from the recipe's seed (see src/core/rng.ts). */
export interface PluginContext {
  /** The cell's seed (recipe seed mixed with the cell id where a plugin asks for it). */
  readonly seed: number;
  /** The scale the recipe is run at: smoke, small or paper. */
  readonly scale: string;
  /** Directory of the recipe file, for resolving relative paths in options. */
  readonly recipeDir: string;
  /**
   * Creates the plugin chosen in a nested slot of this plugin's options (for example the
   * `kappa` slot inside `facemix`). The slot value is the resolved `{ use, ...options }` object.
   */
  resolve<T = unknown>(kind: Kind, slot: PluginSlot): T;
}

/** What a recipe writes where it chooses a plugin: `{ use: name, ...options }`. */
export interface PluginSlot {
  use: string;
  [option: string]: unknown;
}

/**
 * A plugin: a value the registry can list. `options` is the JSON Schema of everything that may
 * stand beside `use:` in a recipe (defaults included); the recipe is validated against it
 * before `create` is ever called, so `create` receives complete, typed options.
 */
export interface PluginDefinition<Options = any, Instance = unknown> {
  readonly kind: Kind;
  readonly name: string;
  /** One line, shown by `ssfer plugins`. */
  readonly description: string;
  /** JSON Schema (type object) of the options; `use` is added by the core. */
  readonly options: JsonSchema;
  /**
   * `ready` plugins run; `planned` ones validate and plan (their options are real) but throw
   * a clear error when created, naming the work that is still to come.
   */
  readonly status?: 'ready' | 'planned';
  /** For `planned` plugins: what is missing, shown when a run reaches it. */
  readonly plannedReason?: string;
  /** What this plugin's instances can do, for other plugins' `requires` (a backbone: 'tokens'). */
  readonly provides?: readonly string[];
  /** What the plugin chosen at another place of the recipe must provide; checked when the recipe is validated. */
  readonly requires?: readonly PluginRequirement[];
  create(options: Options, ctx: PluginContext): Instance;
}

export interface PluginRequirement {
  /** Dotted recipe path of the other plugin slot ('model.backbone'). */
  readonly path: string;
  /** A word that plugin must list in `provides`. */
  readonly provides: string;
  /** Why, and what to choose instead: ends the validation message. */
  readonly because: string;
}

/** Identity function that keeps the literal types of a plugin definition. */
export function definePlugin<Options, Instance>(
  def: PluginDefinition<Options, Instance>,
): PluginDefinition<Options, Instance> {
  return def;
}

/** Marks a property of an options schema as a nested plugin slot of another kind. */
export function slot(kind: Kind, defaultUse?: string, description?: string): JsonSchema {
  return { 'x-slot': kind, ...(defaultUse ? { default: { use: defaultUse } } : {}), ...(description ? { description } : {}) };
}

/** A module that contributes plugins: default export of one definition or an array of them. */
export type PluginModule = { default: PluginDefinition | PluginDefinition[] };
