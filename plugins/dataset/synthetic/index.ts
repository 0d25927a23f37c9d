/** The procedural face generator behind `synthetic-faces` and the real-dataset stand-ins. */
export { Rng, deriveSeed, hashString, mix32, mulberry32 } from '../../../src/core/rng.ts';
export { classNames, EXPRESSIONS_7, EXPRESSIONS_8, RAFDB_LABEL, fromRafdbLabel, toRafdbLabel, type Expression } from '../../../src/data/expressions.ts';
export {
  DEFAULT_DIFFICULTY,
  drawExpressionSheet,
  generateFacePool,
  generateFerSet,
  generateGenericPool,
  renderFace,
  stratifiedLabels,
  type Difficulty,
  type FerSetOptions,
  type PoolOptions,
} from './generate.ts';
export { GENERIC_CATEGORIES } from './scene.ts';
export { montagePng, renderMontage, writeMontage, type MontageOptions, type Sheet } from './montage.ts';
