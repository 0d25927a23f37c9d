import type { DatasetSource, FerData, LoadRequest, Split } from '../../../src/contracts/dataset.ts';
import { options } from '../../../src/core/schema.ts';
import { classNames } from '../../../src/data/expressions.ts';
import { syntheticOptionProperties, syntheticStandIn, type SyntheticFacesOptions } from '../synthetic-faces.ts';

/** A real dataset's class setting: what its tables are called and what its official split holds. */
export interface Setting {
  /** Name for tables (for example `AffectNet-8`). */
  readonly display: string;
  readonly classes: readonly string[];
  /** Sizes of the official split, which a stand-in copies when the recipe asks for every image. */
  readonly trainSize: number;
  readonly testSize: number;
  /** Number of official folds; a stand-in then puts every image in train, each with a fold. */
  readonly folds?: number;
}

export type StandInKnobs = Partial<Omit<SyntheticFacesOptions, 'classes' | 'train_size' | 'test_size'>>;

/** The generator's difficulty knobs, offered as the `stand_in` option of every real dataset. */
export function standInSchema() {
  const { classes: _c, train_size: _tr, test_size: _te, ...knobs } = syntheticOptionProperties();
  return options(knobs, {
    additionalProperties: false,
    default: {},
    description: 'how the synthetic stand-in is drawn when the dataset is not configured locally (ignored when it is)',
  });
}

function isExpressionSet(classes: readonly string[]): boolean {
  const k = classes.length;
  return (k === 7 || k === 8) && classNames(k).every((name, i) => classes[i] === name);
}

/**
 * Synthetic faces in place of a dataset that is not on this machine. An expression dataset gets
 * the generator's own classes. Any other task (Adience's gender or age groups) cannot be drawn, so
 * expressions stand in as surrogate labels — expression i becomes class i mod k — under the
 * task's class names, and the `standIn` text says so.
 */
export function standInSource(name: string, setting: Setting, seed: number, knobs: StandInKnobs): DatasetSource {
  const k = setting.classes.length;
  if (k < 2 || k > 8) throw new Error(`${setting.display}: a synthetic stand-in can carry 2 to 8 classes, not ${k}`);
  const expressions = isExpressionSet(setting.classes);
  const base = syntheticStandIn(name, setting.display, expressions ? (k as 7 | 8) : 8, { seed, ...knobs });
  const sizes = (req: LoadRequest): LoadRequest => ({
    ...req,
    trainSize: req.trainSize ?? setting.trainSize,
    testSize: setting.folds ? 0 : (req.testSize ?? setting.testSize),
  });
  const pool = { pool: base.pool, poolKey: base.poolKey, ...(base.picture ? { picture: base.picture } : {}) };
  if (expressions && !setting.folds) return { load: (req) => base.load(sizes(req)), ...pool };
  return { load: async (req) => surrogate(await base.load(sizes(req)), setting), ...pool };
}

function surrogate(drawn: FerData, setting: Setting): FerData {
  const k = setting.classes.length;
  const relabel = (s: Split): Split => {
    // drawn identities never span two folds, like Adience's subject-exclusive folds
    const folds = setting.folds && s.identities ? Int32Array.from(s.identities, (id) => id % setting.folds!) : undefined;
    return { ...s, labels: Int32Array.from(s.labels, (l) => l % k), ...(folds ? { folds } : {}) };
  };
  const folds = setting.folds ? `; every image in train, ${setting.folds} folds by drawn identity` : '';
  return {
    ...drawn,
    classes: [...setting.classes],
    train: relabel(drawn.train),
    test: relabel(drawn.test),
    standIn: `synthetic stand-in for ${setting.display} (dataset not configured locally): faces drawn with 8 expressions, expression i labelled as class i mod ${k} (${setting.classes.join(', ')})${folds}`,
  };
}
