import type { KindDeclaration } from './kinds.ts';
import type { JsonSchema, PluginSlot, Static, TSchema } from './schema.ts';

export { slot, type JsonSchema, type PluginSlot } from './schema.ts';

/**
 * What a plugin of each kind creates, by kind name. Each contract module adds its kind here by
 * declaration merging (`declare module '…/core/plugin.ts' { interface PluginContracts { … } }`),
 * so `registry.create('dataset', …)` is a DatasetSource and `definePlugin({ kind: 'dataset', … })`
 * checks what `create` returns. A kind no module describes creates `unknown`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface PluginContracts {}

export type ContractOf<K extends string> = K extends keyof PluginContracts ? PluginContracts[K] : unknown;

/** What a plugin's factory is given besides its options. */
export interface PluginContext {
  /** The cell's seed (the recipe's seed; plugins derive their streams from it, see src/core/rng.ts). */
  readonly seed: number;
  /** The scale the recipe is run at: smoke, small or paper. */
  readonly scale: string;
  /** Directory of the recipe file, for resolving relative paths in options. */
  readonly recipeDir: string;
  /**
   * Creates the plugin chosen in a nested slot of this plugin's options (for example the
   * `kappa` slot inside `facemix`). The slot value is the resolved `{ use, ...options }` object.
   */
  resolve<K extends string>(kind: K, slot: PluginSlot): ContractOf<K>;
}

/**
 * A plugin: a value the registry can list. `options` is the JSON Schema of everything that may
 * stand beside `use:` in a recipe (defaults included); the recipe is validated against it
 * before `create` is ever called, so `create` receives complete options.
 */
export interface PluginDefinition<Options = never, Instance = unknown> {
  readonly kind: string;
  readonly name: string;
  /** One line, shown by `ssfer plugins`. */
  readonly description: string;
  /** JSON Schema (type object) of the options; `use` is added by the core. */
  readonly options: JsonSchema;
  /** What this plugin's instances can do, for other plugins' `requires` (a backbone: 'tokens'). */
  readonly provides?: readonly string[];
  /** What the plugin chosen at another place of the recipe must provide; checked when the recipe is validated. */
  readonly requires?: readonly PluginRequirement[];
  /**
   * The figures its instances report (dotted paths under where the kind keeps them: an analysis's
   * under `analysis.<name>`), given its options; a recipe's table may show them (`grid.metric`),
   * and the validator refuses a figure not listed here. Absent: not checked.
   */
  figures?(options: Options): readonly string[];
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

/**
 * A plugin whose options type is derived from its TypeBox schema and whose instance is checked
 * against its kind's contract. Returns the definition unchanged.
 */
export function definePlugin<const K extends string, S extends TSchema, I extends ContractOf<K>>(def: {
  readonly kind: K;
  readonly name: string;
  readonly description: string;
  readonly options: S;
  readonly provides?: readonly string[];
  readonly requires?: readonly PluginRequirement[];
  figures?(options: Static<S>): readonly string[];
  create(options: Static<S>, ctx: PluginContext): I;
}): PluginDefinition<Static<S>, I> & { readonly kind: K; readonly options: S } {
  return def;
}

/** What a plugin file exports: a definition or a list of them (default export), and the kinds it declares. */
export interface PluginModule {
  readonly default?: PluginDefinition | readonly PluginDefinition[];
  readonly kinds?: readonly KindDeclaration[];
}
