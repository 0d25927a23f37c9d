/** The extension points of the framework. Each is one inversify service identifier. */
export const KINDS = [
  'dataset',
  'sampler',
  'face-boxes',
  'backbone',
  'pretrain',
  'mixing',
  'kappa',
  'mix-loss',
  'ssl',
  'augment',
  'tuner',
  'tracker',
] as const;

export type Kind = (typeof KINDS)[number];

export function isKind(value: string): value is Kind {
  return (KINDS as readonly string[]).includes(value);
}

/** One service identifier per extension point; plugins are bound under it by name. */
export const ServiceIds: { readonly [K in Kind]: symbol } = Object.freeze(
  Object.fromEntries(KINDS.map((k) => [k, Symbol.for(`ssfer.plugin.${k}`)])) as { [K in Kind]: symbol },
);
