/**
 * `synthetic-faces`: the embedded default dataset. Procedurally drawn faces whose expression is
 * carried by brow, lid, mouth and nose cues, with varied identities, poses, backgrounds and
 * occluders; no downloads, identical on every machine for a given seed.
 */
import type { DatasetSource, FerData, ImagePool, LoadRequest } from '../../src/contracts/dataset.ts';
import { definePlugin } from '../../src/core/plugin.ts';
import type { Json } from '../../src/core/json.ts';
import { options, Type, type Static, type TObject } from '../../src/core/schema.ts';
import {
  deriveSeed,
  drawExpressionSheet,
  generateFacePool,
  generateFerSet,
  generateGenericPool,
  hashString,
  montagePng,
  renderMontage,
  type Difficulty,
} from './synthetic/index.ts';

const SYNTHETIC_DEFAULTS = {
  classes: 7,
  train_size: 2000,
  test_size: 700,
  intensity_min: 0.3,
  intensity_max: 1,
  pose: 0.7,
  noise: 0.02,
  occlusion: 0.1,
  clutter: 0.7,
  lighting: 0.8,
  images_per_identity: 6,
} as const;

/**
 * Schema properties of the generator's knobs, reusable by plugins that fall back to a
 * synthetic stand-in (pass their own defaults for the sizes).
 */
export function syntheticOptionProperties(defaults: { readonly train_size?: number; readonly test_size?: number } = {}) {
  const d = { ...SYNTHETIC_DEFAULTS, ...defaults };
  return {
    classes: Type.Unsafe<7 | 8>({ type: 'integer', enum: [7, 8], default: d.classes, description: 'Expression classes: 7 basic, or 8 with contempt.' }),
    train_size: Type.Integer({
      minimum: 1,
      default: d.train_size,
      description: 'Training images drawn when the recipe asks for all of them (data.size.train null).',
    }),
    test_size: Type.Integer({
      minimum: 1,
      default: d.test_size,
      description: 'Test images drawn when the recipe asks for all of them; their identities never appear in training.',
    }),
    intensity_min: Type.Number({
      minimum: 0,
      maximum: 1.5,
      default: d.intensity_min,
      description: 'Lowest expression intensity (0 is a neutral face); low values make classes overlap.',
    }),
    intensity_max: Type.Number({
      minimum: 0,
      maximum: 1.5,
      default: d.intensity_max,
      description: 'Highest expression intensity (1 is a clear, full expression).',
    }),
    pose: Type.Number({
      minimum: 0,
      maximum: 2,
      default: d.pose,
      description: 'Spread of face position, scale, in-plane rotation and head turn (0 = centred frontal).',
    }),
    noise: Type.Number({ minimum: 0, maximum: 0.5, default: d.noise, description: 'Standard deviation of the pixel noise, in [0, 1] intensity units.' }),
    occlusion: Type.Number({
      minimum: 0,
      maximum: 1,
      default: d.occlusion,
      description: 'Probability that a hand, card, sunglasses, microphone or hair strand covers part of the face.',
    }),
    clutter: Type.Number({ minimum: 0, maximum: 3, default: d.clutter, description: 'Amount of background clutter (0 = plain gradient wall).' }),
    lighting: Type.Number({ minimum: 0, maximum: 2, default: d.lighting, description: 'Spread of exposure, colour cast and gamma between images.' }),
    images_per_identity: Type.Number({ minimum: 1, default: d.images_per_identity, description: 'Average number of images per drawn person.' }),
  };
}

/** The generator's options after validation. */
export type SyntheticFacesOptions = Static<TObject<ReturnType<typeof syntheticOptionProperties>>>;

export function toDifficulty(o: Partial<SyntheticFacesOptions>): Partial<Difficulty> {
  const d: { -readonly [K in keyof Difficulty]?: number } = {};
  if (o.intensity_min !== undefined) d.intensityMin = o.intensity_min;
  if (o.intensity_max !== undefined) d.intensityMax = o.intensity_max;
  if (o.pose !== undefined) d.pose = o.pose;
  if (o.noise !== undefined) d.noise = o.noise;
  if (o.occlusion !== undefined) d.occlusion = o.occlusion;
  if (o.clutter !== undefined) d.clutter = o.clutter;
  if (o.lighting !== undefined) d.lighting = o.lighting;
  return d;
}

const SALT = hashString('synthetic-faces');
/** People in the dataset's picture, one row each. */
const PICTURE_IDENTITIES = 4;

interface SourceSpec {
  readonly name: string;
  readonly displayName: string;
  readonly standIn?: string;
  readonly seed: number;
  /**
   * Seed of the pre-training pools. It does not depend on which dataset asks, so every dataset
   * of a recipe pre-trains on the same pool and cells of different datasets can share one
   * pre-training reproducibly.
   */
  readonly poolSeed: number;
  readonly options: SyntheticFacesOptions;
  readonly poolStandIn?: { readonly faces: string; readonly generic: string };
  /** What the pools depend on besides the seed: the generator's knobs (see DatasetSource.poolKey). */
  readonly poolKey: Json;
}

/**
 * Drawn sets of this process, by everything a set depends on. Drawing is deterministic, and a
 * grid's cells of one dataset ask for the same set (a main-job cell spent 2.3 s of its 40 s
 * drawing it again), so a process that trains several cells draws each set once. The arrays are
 * shared: like every loaded dataset, they are read, never written.
 */
const drawn = new Map<string, Promise<FerData>>();
/** Drawn sets kept at most; the oldest is let go first (a grid has a few datasets). */
const DRAWN_KEPT = 8;

function makeSource(spec: SourceSpec): DatasetSource {
  const o = spec.options;
  const difficulty = toDifficulty(o);
  return {
    load(req: LoadRequest): Promise<FerData> {
      const trainSize = req.trainSize ?? o.train_size;
      const testSize = req.testSize ?? o.test_size;
      const key = JSON.stringify([spec.name, spec.displayName, spec.standIn ?? null, spec.seed, o, req.imageSize, trainSize, testSize]);
      let data = drawn.get(key);
      if (!data) {
        if (drawn.size >= DRAWN_KEPT) drawn.delete(drawn.keys().next().value!);
        data = Promise.resolve().then(() =>
          generateFerSet({
            classes: o.classes,
            trainSize,
            testSize,
            imageSize: req.imageSize,
            seed: spec.seed,
            difficulty,
            imagesPerIdentity: o.images_per_identity,
            name: spec.name,
            displayName: spec.displayName,
            ...(spec.standIn ? { standIn: spec.standIn } : {}),
          }),
        );
        drawn.set(key, data);
        data.catch(() => drawn.delete(key));
      }
      return data;
    },
    poolKey: () => spec.poolKey,
    async picture(imageSize) {
      const sheet = drawExpressionSheet({ classes: o.classes, imageSize, seed: deriveSeed(spec.seed, 'picture'), difficulty, identities: PICTURE_IDENTITIES });
      return montagePng(renderMontage(sheet.images, imageSize, sheet.count, sheet.captions, { cols: o.classes }));
    },
    async pool(kind, size, imageSize): Promise<ImagePool> {
      const common = { size, imageSize, difficulty };
      if (kind === 'faces') {
        return generateFacePool({ ...common, seed: deriveSeed(spec.poolSeed, 'face-pool'), ...(spec.poolStandIn ? { standIn: spec.poolStandIn.faces } : {}) });
      }
      return generateGenericPool({
        ...common,
        seed: deriveSeed(spec.poolSeed, 'generic-pool'),
        ...(spec.poolStandIn ? { standIn: spec.poolStandIn.generic } : {}),
      });
    },
  };
}

export interface StandInOptions extends Partial<Omit<SyntheticFacesOptions, 'classes'>> {
  /** The cell's seed (`ctx.seed`). */
  readonly seed: number;
}

/**
 * The synthetic generator dressed as a real dataset that is not available locally: same
 * classes, the real name for tables, and `standIn` saying what it really is. Each name gets
 * its own faces.
 */
export function syntheticStandIn(name: string, displayName: string, classes: 7 | 8, options: StandInOptions): DatasetSource {
  const { seed, ...rest } = options;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<SyntheticFacesOptions>;
  return makeSource({
    name,
    displayName,
    standIn: `synthetic stand-in for ${displayName} (dataset not configured locally)`,
    seed: deriveSeed(seed, SALT, name),
    poolSeed: deriveSeed(seed, SALT, 'pool'),
    options: { ...SYNTHETIC_DEFAULTS, ...defined, classes },
    poolKey: { stand_in: defined as Json },
    poolStandIn: {
      faces: 'synthetic face pool standing in for the unlabeled face-recognition images',
      generic: 'synthetic generic pool standing in for generic (non-face) pre-training images',
    },
  });
}

export default definePlugin({
  kind: 'dataset',
  name: 'synthetic-faces',
  description: 'Procedurally drawn faces with 7 or 8 expressions; embedded, no download, deterministic from the seed.',
  options: options(syntheticOptionProperties(), { additionalProperties: false }),
  create(options, ctx): DatasetSource {
    const o = { ...SYNTHETIC_DEFAULTS, ...options };
    if (o.intensity_min > o.intensity_max) throw new Error(`synthetic-faces: intensity_min ${o.intensity_min} exceeds intensity_max ${o.intensity_max}`);
    // The pools are drawn with the knobs; the classes and split sizes do not change them.
    const { classes: _classes, ...knobs } = options;
    return makeSource({
      name: 'synthetic-faces',
      displayName: 'Synthetic faces',
      seed: deriveSeed(ctx.seed, SALT),
      poolSeed: deriveSeed(ctx.seed, SALT, 'pool'),
      options: o,
      poolKey: knobs,
    });
  },
});
