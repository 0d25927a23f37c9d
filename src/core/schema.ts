/**
 * Option schemas with static types. Every option a recipe can write is declared once, as a
 * TypeBox schema (which is JSON Schema, checked by ajv), and its TypeScript type is derived from
 * it with `Static`. The helpers below write the JSON Schema forms the validator's messages are
 * made for (`type: [t, 'null']`, `enum`), which TypeBox's own unions would spell as `anyOf`.
 */
import { Type, type ObjectOptions, type SchemaOptions, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';

export { Type, type Static, type TObject, type TProperties, type TSchema };

/** A JSON Schema fragment (the draft 2020-12 subset ajv understands); TypeBox schemas are ones. */
export type JsonSchema = { [key: string]: unknown };

/** What a recipe writes where it chooses a plugin: `{ use: name, ...options }`. */
export interface PluginSlot {
  use: string;
  [option: string]: unknown;
}

/**
 * An object of options. A property with a `default` is filled in by validation, so it is present
 * in the static type but not required of the recipe; a property without one is required unless
 * wrapped in `Type.Optional`.
 */
export function options<P extends TProperties>(properties: P, extra: ObjectOptions = {}): TObject<P> {
  const schema = Type.Object(properties, extra);
  const loose = schema as { required?: string[] };
  const required = (loose.required ?? []).filter((key) => (properties[key] as { default?: unknown }).default === undefined);
  if (required.length > 0) loose.required = required;
  else delete loose.required;
  return schema;
}

/** One of the given values (`enum`). */
export function choice<const V extends readonly (string | number | boolean)[]>(values: V, extra: SchemaOptions = {}): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...extra, enum: [...values] });
}

/** The schema's values or null (`type: [t, 'null']`); `schema` must have a single `type`. */
export function nullable<S extends TSchema>(schema: S, extra: SchemaOptions = {}): TUnsafe<Static<S> | null> {
  const { type, ...rest } = schema as unknown as { type: string } & Record<string, unknown>;
  if (typeof type !== 'string') throw new Error(`nullable: the schema needs one type, got ${JSON.stringify(type)}`);
  return Type.Unsafe<Static<S> | null>({ ...rest, ...extra, type: [type, 'null'] });
}

/** Exactly two numbers (AdamW's betas). */
export function pair(item: TSchema, extra: SchemaOptions = {}): TUnsafe<[number, number]> {
  return Type.Unsafe<[number, number]>({ type: 'array', items: item, minItems: 2, maxItems: 2, ...extra });
}

/**
 * A plugin slot of a kind (FaceMix's `kappa`): the validator checks the chosen plugin's options
 * there. The default is a plugin name or a whole `{ use, ...options }`.
 */
export function slot(kind: string, defaultUse?: string | PluginSlot, description?: string): TUnsafe<PluginSlot> {
  const byDefault = typeof defaultUse === 'string' ? { use: defaultUse } : defaultUse;
  return Type.Unsafe<PluginSlot>({ 'x-slot': kind, ...(byDefault ? { default: byDefault } : {}), ...(description ? { description } : {}) });
}

/**
 * A list of plugin slots of one kind (`evaluation.analyses`), each written as a slot is (`name` or
 * `{ use, ...options }`); the validator checks each entry's options, and one plugin may be listed
 * once (what an entry reports is keyed by its plugin's name).
 */
export function slotList(kind: string, description?: string): TUnsafe<PluginSlot[]> {
  return Type.Unsafe<PluginSlot[]>({ type: 'array', items: { 'x-slot': kind }, default: [], ...(description ? { description } : {}) });
}

/**
 * The largest batch any batch size option takes, with its reason (`x-bound` is printed with a
 * limit's message, so the bound says why it is there).
 */
export const BATCH_LIMIT = {
  maximum: 65_536,
  'x-bound': 'at most 65536 images per batch: a larger batch does not fit in memory at any image size',
} as const;
