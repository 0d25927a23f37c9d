import { definePlugin, type JsonSchema, type PluginDefinition } from '../../../src/core/plugin.ts';
import type { DatasetSource, LoadRequest } from '../../../src/contracts/dataset.ts';
import { syntheticOptionProperties, syntheticStandIn, type SyntheticFacesOptions } from '../synthetic-faces.ts';

type StandInKnobs = Partial<Omit<SyntheticFacesOptions, 'classes' | 'train_size' | 'test_size'>>;

/** The generator's difficulty knobs, offered as the `stand_in` option of every real dataset. */
function standInSchema(): JsonSchema {
  const { classes: _c, train_size: _tr, test_size: _te, ...knobs } = syntheticOptionProperties();
  return {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: knobs,
    description: 'how the synthetic stand-in is drawn when the dataset is not configured locally (ignored when it is)',
  };
}

/** What the paper reports for a dataset: sizes and classes of its official split. */
export interface RealDatasetFacts {
  readonly name: string;
  readonly displayName: string;
  readonly env: string;
  readonly layout: string;
  /** Class settings, the default first. */
  readonly classes: readonly (7 | 8)[];
  /** Name the class setting even for the default (AffectNet-7, AffectNet-8). */
  readonly alwaysNameClasses?: boolean;
  readonly trainSize: Record<number, number>;
  readonly testSize: Record<number, number>;
}

/**
 * A plugin for a dataset read from its official layout. When no root is configured (option or
 * environment variable), a synthetic stand-in with the dataset's classes and split sizes is used
 * and every table says so.
 */
export function realDatasetPlugin(facts: RealDatasetFacts, extraOptions: Record<string, JsonSchema> = {}): PluginDefinition {
  return definePlugin<{ root: string | null; classes: 7 | 8; stand_in: StandInKnobs }, DatasetSource>({
    kind: 'dataset',
    name: facts.name,
    description: `${facts.displayName} from its official layout (${facts.layout}); a synthetic stand-in when not configured locally`,
    options: {
      type: 'object',
      properties: {
        root: { type: ['string', 'null'], default: null, description: `dataset folder; null reads the ${facts.env} environment variable, and without it a synthetic stand-in is used` },
        classes: { enum: [...facts.classes], default: facts.classes[0], description: 'class setting' },
        stand_in: standInSchema(),
        ...extraOptions,
      },
    },
    create(options, ctx) {
      const root = options.root ?? process.env[facts.env] ?? null;
      const classes = options.classes;
      // AffectNet is always named with its class setting; FERPlus only when it is not its usual 8.
      const display = facts.alwaysNameClasses || classes !== facts.classes[0] ? `${facts.displayName}-${classes}` : facts.displayName;
      const standIn = syntheticStandIn(facts.name, display, classes, { seed: ctx.seed, ...options.stand_in });
      return {
        async load(req: LoadRequest) {
          if (root) {
            throw new Error(
              `${display}: reading the official layout from '${root}' is not implemented yet (real-dataset loaders are the next step); unset ${facts.env} and root to use the synthetic stand-in`,
            );
          }
          // The stand-in has the real split's size unless the recipe asks for fewer images.
          return standIn.load({ ...req, trainSize: req.trainSize ?? facts.trainSize[classes]!, testSize: req.testSize ?? facts.testSize[classes]! });
        },
        pool: (kind, size, imageSize) => standIn.pool(kind, size, imageSize),
      };
    },
  });
}
