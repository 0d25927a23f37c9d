import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Ajv } from 'ajv';
import pkg from '../../package.json' with { type: 'json' };
import type { Backbone, BackboneFactory } from '../contracts/backbone.ts';
import type { PluginSlot } from '../core/plugin.ts';
import { createRegistry, type PluginRegistry } from '../core/registry.ts';
import { writeJson } from '../core/files.ts';
import { hashOf } from '../core/json.ts';
import { loadTensors, saveTensors } from '../train/checkpoint.ts';

/**
 * A trained model kept for use after its run: a folder with
 *   model.json      the manifest (format version, backbone plugin and options, preprocessing,
 *                   class names, where the model came from, the weights file's size and sha256)
 *   model.weights   the weights, float32, in the project's tensor file format (train/checkpoint.ts)
 * written as a whole (a temporary folder renamed into place), so a reader sees the old bundle or
 * the new one. Loading rebuilds the backbone from its plugin and options and loads the weights.
 */

export const MODEL_FORMAT = 'ssfer-model';
/** Bumped when the manifest or the weights' meaning changes; other versions are refused. */
export const MODEL_FORMAT_VERSION = 2;
export const MANIFEST_FILE = 'model.json';
export const WEIGHTS_FILE = 'model.weights';
/** The bundle's folder inside a cell's results folder. */
export const CELL_MODEL_DIR = 'model';

export const SSFER_VERSION: string = pkg.version;

/** How an image becomes the model's input; what a user of the model must do to a photo. */
export interface Preprocessing {
  readonly image_size: number;
  readonly channels: number;
  readonly layout: 'NHWC';
  readonly channel_order: string;
  readonly value_range: readonly [number, number];
  readonly resize: string;
  /** Per-channel mean and std the model subtracts and divides by itself; null when the backbone does not say. */
  readonly mean: readonly number[] | null;
  readonly std: readonly number[] | null;
  /**
   * Where the face sat in the training images, so that a face found in a photo can be cropped
   * alike (`ssfer predict`); absent in bundles written before it was recorded.
   */
  readonly face_box?: FacePlacement;
}

/** Where the face sits in a model's training images: the median face box as shares of the image side. */
export interface FacePlacement {
  /** Median x1, y1, x2, y2 of the training images' face boxes, each divided by the image side (0 to 1). */
  readonly median: readonly [number, number, number, number];
  /** How many training images' boxes the median is over. */
  readonly images: number;
  /** Where those boxes came from (the cell's face-boxes note: annotated, detected, fallback counts). */
  readonly boxes: string;
}

/** The median face box of a split's boxes (corners in pixels of size × size images), as shares of the side. */
export function facePlacement(boxes: Float32Array, imageSize: number, note: string): FacePlacement | null {
  const n = Math.floor(boxes.length / 4);
  if (n === 0) return null;
  const median = [0, 1, 2, 3].map((k) => {
    const v = Float64Array.from({ length: n }, (_, i) => boxes[4 * i + k]! / imageSize).sort();
    const mid = n >> 1;
    return n % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  }) as [number, number, number, number];
  if (!median.every(Number.isFinite) || !(median[2] > median[0] && median[3] > median[1])) return null;
  return { median: median.map((v) => Math.round(v * 1e4) / 1e4) as [number, number, number, number], images: n, boxes: note };
}

/** Where a model came from: its run, cell, data and result. */
export interface ModelSource {
  readonly recipe: string;
  readonly cell: string;
  readonly dataset: { readonly name: string; readonly display: string; readonly stand_in: string | null };
  readonly budget: string;
  readonly labeled_count: number;
  readonly unlabeled_count: number;
  /** Test accuracy of these weights in the run, in [0, 1], and on how many images. */
  readonly test_accuracy: number;
  readonly test_count: number;
  readonly stages: Readonly<Record<string, string>>;
}

export interface ModelManifest {
  readonly format: typeof MODEL_FORMAT;
  readonly format_version: number;
  readonly ssfer_version: string;
  readonly created: string;
  readonly backbone: { readonly plugin: string; readonly options: Record<string, unknown>; readonly config: Record<string, unknown> };
  readonly classes: readonly string[];
  readonly preprocessing: Preprocessing;
  readonly weights: {
    readonly file: string;
    readonly dtype: 'float32';
    readonly bytes: number;
    readonly sha256: string;
    readonly tensors: number;
    readonly parameters: number;
  };
  readonly source: ModelSource;
}

/** A bundle that cannot be used (missing, damaged, another format version): one message with the fix. */
export class ModelBundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelBundleError';
  }
}

/** What the cell that trained the model knows about it. */
export interface ModelOrigin {
  readonly backbone: PluginSlot;
  readonly factory: BackboneFactory;
  readonly classes: readonly string[];
  readonly source: ModelSource;
  /** Where the face sat in the training images, when known. */
  readonly facePlacement?: FacePlacement | null;
}

function numbers(v: unknown): readonly number[] | null {
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? v : null;
}

function channelOrder(channels: number): string {
  return channels === 3 ? 'RGB' : channels === 1 ? 'grey' : `${channels} channels`;
}

/** Writes `model`'s weights and everything needed to use it into `dir` (replacing what is there). */
export async function saveModelBundle(dir: string, model: Backbone, origin: ModelOrigin): Promise<ModelManifest> {
  if (origin.classes.length !== model.numClasses)
    throw new Error(`model bundle: ${origin.classes.length} class names for a model of ${model.numClasses} classes`);
  const { use: plugin, ...options } = origin.backbone;
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const state = model.state();
    let parameters = 0;
    for (const t of Object.values(state)) {
      if (t.dtype !== 'float32') throw new Error(`model bundle: weight of dtype ${t.dtype}; bundles hold float32 weights`);
      parameters += t.size;
    }
    const tensors = Object.keys(state).length;
    try {
      await saveTensors(path.join(tmp, WEIGHTS_FILE), state, { format: MODEL_FORMAT, format_version: MODEL_FORMAT_VERSION });
    } finally {
      tf.dispose(Object.values(state));
    }
    const written = fs.readFileSync(path.join(tmp, WEIGHTS_FILE));
    const config = origin.factory.config as Record<string, unknown>;
    const manifest: ModelManifest = {
      format: MODEL_FORMAT,
      format_version: MODEL_FORMAT_VERSION,
      ssfer_version: SSFER_VERSION,
      created: new Date().toISOString(),
      backbone: { plugin, options, config: { ...config } },
      classes: [...origin.classes],
      preprocessing: {
        image_size: model.imageSize,
        channels: model.channels,
        layout: 'NHWC',
        channel_order: channelOrder(model.channels),
        value_range: [0, 1],
        resize: 'the whole image (or face crop) squeezed to image_size × image_size, no centre crop, as in training (image files were resized with Lanczos-3)',
        mean: numbers(config.inputMean),
        std: numbers(config.inputStd),
        ...(origin.facePlacement ? { face_box: origin.facePlacement } : {}),
      },
      weights: { file: WEIGHTS_FILE, dtype: 'float32', bytes: written.length, sha256: createHash('sha256').update(written).digest('hex'), tensors, parameters },
      source: origin.source,
    };
    writeJson(path.join(tmp, MANIFEST_FILE), manifest);
    // Swap the folders: a reader never sees a half-written bundle.
    const old = `${tmp}.old`;
    const hadOne = fs.existsSync(dir);
    if (hadOne) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    if (hadOne) fs.rmSync(old, { recursive: true, force: true });
    return manifest;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** What a finished cell reports about itself (its CellMetrics), as far as a bundle records it. */
export interface CellSummary {
  readonly id: string;
  readonly classes: readonly string[];
  readonly dataset: { readonly name: string; readonly display: string; readonly stand_in: string | null };
  readonly budget: string;
  readonly labeled_count: number;
  readonly unlabeled_count: number;
  readonly accuracy: number;
  readonly test_count: number;
  readonly stages: Readonly<Record<string, string>>;
}

/** Keeps a finished cell's evaluated model in its results folder. */
export async function keepCellModel(
  dir: string,
  model: Backbone,
  about: {
    recipe: string;
    backbone: PluginSlot;
    factory: BackboneFactory;
    metrics: CellSummary;
    /** The training images' face boxes (corners in pixels of imageSize × imageSize images) and where they came from. */
    faceBoxes?: { boxes: Float32Array; imageSize: number; note: string };
  },
): Promise<void> {
  const m = about.metrics;
  const f = about.faceBoxes;
  await saveModelBundle(dir, model, {
    backbone: about.backbone,
    factory: about.factory,
    classes: m.classes,
    facePlacement: f ? facePlacement(f.boxes, f.imageSize, f.note) : null,
    source: {
      recipe: about.recipe,
      cell: m.id,
      dataset: { name: m.dataset.name, display: m.dataset.display, stand_in: m.dataset.stand_in },
      budget: m.budget,
      labeled_count: m.labeled_count,
      unlabeled_count: m.unlabeled_count,
      test_accuracy: m.accuracy,
      test_count: m.test_count,
      stages: m.stages,
    },
  });
}

const manifestSchema = {
  type: 'object',
  required: ['format', 'format_version', 'ssfer_version', 'backbone', 'classes', 'preprocessing', 'weights', 'source'],
  properties: {
    format: { const: MODEL_FORMAT },
    format_version: { type: 'integer' },
    ssfer_version: { type: 'string' },
    backbone: {
      type: 'object',
      required: ['plugin', 'options', 'config'],
      properties: { plugin: { type: 'string', minLength: 1 }, options: { type: 'object' }, config: { type: 'object' } },
    },
    classes: { type: 'array', items: { type: 'string' }, minItems: 1 },
    preprocessing: {
      type: 'object',
      required: ['image_size', 'channels', 'layout', 'channel_order', 'value_range', 'mean', 'std'],
      properties: {
        image_size: { type: 'integer', minimum: 1 },
        channels: { type: 'integer', minimum: 1 },
        layout: { const: 'NHWC' },
        value_range: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
        mean: { type: ['array', 'null'], items: { type: 'number' } },
        std: { type: ['array', 'null'], items: { type: 'number' } },
        face_box: {
          type: 'object',
          required: ['median'],
          properties: { median: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 }, minItems: 4, maxItems: 4 } },
        },
      },
    },
    weights: {
      type: 'object',
      required: ['file', 'bytes', 'sha256'],
      properties: {
        file: { type: 'string', pattern: '^[^/\\\\]+$' },
        bytes: { type: 'integer', minimum: 0 },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      },
    },
    source: { type: 'object', required: ['recipe', 'cell'] },
  },
} as const;

const checkManifest = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }).compile(manifestSchema);

const RERUN = 'run the cell again (ssfer run <recipe> writes cells/<id>/seed-<k>/model/)';

/** Reads and checks a bundle's manifest (not its weights). */
export function readManifest(dir: string): ModelManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(file))
    throw new ModelBundleError(
      `${dir}: no saved model here (${MANIFEST_FILE} is missing); name a cell's seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or its model/ folder`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelBundleError(`${file}: damaged model bundle (not JSON: ${(err as Error).message}); ${RERUN}`);
  }
  const m = raw as Partial<ModelManifest> | null;
  if (m === null || typeof m !== 'object' || m.format !== MODEL_FORMAT)
    throw new ModelBundleError(`${file}: not an ssfer model bundle (format ${JSON.stringify(m?.format)}, expected "${MODEL_FORMAT}")`);
  if (m.format_version !== MODEL_FORMAT_VERSION) {
    throw new ModelBundleError(
      `${file}: model bundle format version ${JSON.stringify(m.format_version)} (written by ssfer ${m.ssfer_version ?? 'unknown'}); this ssfer (${SSFER_VERSION}) reads version ${MODEL_FORMAT_VERSION} only — use the ssfer that wrote it, or ${RERUN}`,
    );
  }
  if (!checkManifest(m)) {
    const problems = (checkManifest.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
    throw new ModelBundleError(`${file}: damaged model bundle (${problems.join('; ')}); ${RERUN}`);
  }
  return m as ModelManifest;
}

export interface LoadedModel {
  readonly dir: string;
  readonly manifest: ModelManifest;
  readonly factory: BackboneFactory;
  /** The rebuilt model with the bundle's weights (not trainable); the caller disposes it. */
  readonly model: Backbone;
}

/**
 * Rebuilds a bundle's model: checks the manifest and the weights file's size and checksum,
 * creates the backbone from its plugin and options, checks that this ssfer resolves them to the
 * same configuration, and loads every weight (names and shapes must match exactly).
 */
export async function loadModelBundle(dir: string, opts: { registry?: PluginRegistry; pluginFiles?: readonly string[] } = {}): Promise<LoadedModel> {
  const manifest = readManifest(dir);
  const weightsFile = path.join(dir, manifest.weights.file);
  const damaged = (why: string) => new ModelBundleError(`${weightsFile}: damaged model bundle (${why}); ${RERUN}`);
  if (!fs.existsSync(weightsFile)) throw damaged('the weights file is missing');
  const bytes = fs.readFileSync(weightsFile);
  if (bytes.length !== manifest.weights.bytes) throw damaged(`${bytes.length} bytes, the manifest says ${manifest.weights.bytes}`);
  if (createHash('sha256').update(bytes).digest('hex') !== manifest.weights.sha256) throw damaged('its sha256 differs from the manifest’s');

  const registry = opts.registry ?? (await createRegistry(opts.pluginFiles ?? []));
  const { plugin, options } = manifest.backbone;
  if (!registry.has('backbone', plugin)) {
    throw new ModelBundleError(
      `${dir}: the model's backbone plugin '${plugin}' is not registered (known: ${registry.namesOf('backbone').join(', ')}); load the file that defines it with --plugin FILE`,
    );
  }
  let factory: BackboneFactory;
  try {
    factory = registry.create('backbone', { use: plugin, ...options }, { seed: 0, scale: 'paper', recipeDir: dir });
  } catch (err) {
    throw new ModelBundleError(`${dir}: this ssfer cannot build the model's backbone '${plugin}' from its saved options (${(err as Error).message})`);
  }
  if (hashOf(factory.config as never) !== hashOf(manifest.backbone.config as never)) {
    throw new ModelBundleError(
      `${dir}: this ssfer (${SSFER_VERSION}) resolves the backbone options to another configuration than ssfer ${manifest.ssfer_version} did; use the ssfer that wrote the model`,
    );
  }
  const { tensors } = await loadTensors(weightsFile).catch((err: Error) => {
    throw damaged(err.message);
  });
  const model = factory.build(manifest.classes.length, 0, { trainable: false });
  try {
    model.loadState(tensors);
  } catch (err) {
    model.dispose();
    throw new ModelBundleError(
      `${weightsFile}: the weights do not fit the ${plugin} backbone the manifest describes (${(err as Error).message.replace(/\n\s*/g, ' ')}); ${RERUN}`,
    );
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { dir, manifest, factory, model };
}

/**
 * The bundle folder a user names: a model folder itself, or a cell folder that holds one. Anything
 * else gets a message that says what the folder is and what to name instead.
 */
export function findModelDir(given: string): string {
  if (!fs.existsSync(given))
    throw new ModelBundleError(`${given}: no such file or folder; name a cell's seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or its model/ folder`);
  if (!fs.statSync(given).isDirectory())
    throw new ModelBundleError(`${given}: not a folder; name a cell's seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or its model/ folder`);
  if (fs.existsSync(path.join(given, MANIFEST_FILE))) return given;
  const inCell = path.join(given, CELL_MODEL_DIR);
  if (fs.existsSync(path.join(inCell, MANIFEST_FILE))) return inCell;
  const hasModel = (dir: string) => fs.existsSync(path.join(dir, CELL_MODEL_DIR, MANIFEST_FILE));
  const list = (dirs: string[]) => `${dirs.slice(0, 6).join(', ')}${dirs.length > 6 ? `, … (${dirs.length} in all)` : ''}`;
  // A cell folder holds one folder per seed (seed-0, seed-1, …), each with its own model.
  const seeds = fs
    .readdirSync(given)
    .filter((d) => /^seed-\d+$/.test(d))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((d) => path.join(given, d));
  if (seeds.length) {
    const withModel = seeds.filter(hasModel);
    if (seeds.length === 1 && withModel.length === 1) return path.join(withModel[0]!, CELL_MODEL_DIR);
    if (withModel.length === 0) return findModelDir(seeds[0]!); // says why seed 0 has none
    throw new ModelBundleError(`${given}: a cell of ${seeds.length} seeds, each with its own model; name one seed's folder: ${list(withModel)}`);
  }
  const cells = path.join(given, 'cells');
  if (fs.existsSync(path.join(given, 'run.json')) && fs.existsSync(cells)) {
    const withModel = fs
      .readdirSync(cells)
      .flatMap((c) => [
        path.join(cells, c),
        ...(fs.statSync(path.join(cells, c)).isDirectory() ? fs.readdirSync(path.join(cells, c)).map((d) => path.join(cells, c, d)) : []),
      ])
      .filter(hasModel);
    throw new ModelBundleError(
      `${given}: a run folder, not one cell; name one of its cells' seed folders${withModel.length ? `: ${list(withModel)}` : ' (none of them has a saved model)'}`,
    );
  }
  if (fs.existsSync(path.join(given, 'error.json')))
    throw new ModelBundleError(`${given}: this cell failed, so it has no model (see its error.json); fix the cause and run it again`);
  if (fs.existsSync(path.join(given, 'metrics.json'))) {
    throw new ModelBundleError(
      `${given}: this cell has no saved model (no ${CELL_MODEL_DIR}/${MANIFEST_FILE}; it was run by an ssfer that did not keep models); run the cell again to get one`,
    );
  }
  if (fs.existsSync(path.join(given, 'checkpoints')))
    throw new ModelBundleError(`${given}: this cell has not finished, so it has no model yet; continue it with ssfer run <recipe> --resume`);
  throw new ModelBundleError(
    `${given}: no saved model here (no ${MANIFEST_FILE} or ${CELL_MODEL_DIR}/${MANIFEST_FILE}); name a cell's seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or its model/ folder`,
  );
}
