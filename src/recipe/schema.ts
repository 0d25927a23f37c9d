import { BATCH_LIMIT, choice, nullable, options, slot, slotList, Type, type JsonSchema, type Static } from '../core/schema.ts';

export const SCALES = ['smoke', 'small', 'paper'] as const;
export type Scale = (typeof SCALES)[number];

const scalar = { type: ['string', 'number', 'boolean', 'null'] };

const axisSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'values'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]*$', description: 'short name, used in cell ids (name=value)' },
    title: { type: 'string', description: 'header shown in tables' },
    path: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]*(\\.[A-Za-z0-9_-]+)*$', description: 'dotted recipe path the axis sets' },
    by: { type: 'string', description: 'name of an earlier axis in the same group whose value selects the list of values' },
    format: { enum: ['plain', 'percent'], default: 'plain', description: 'how values are shown in tables' },
    labels: { type: 'object', additionalProperties: { type: 'string' }, description: 'display label per value' },
    values: {
      oneOf: [
        {
          type: 'array',
          minItems: 1,
          items: {
            oneOf: [
              scalar,
              {
                type: 'object',
                additionalProperties: false,
                required: ['value'],
                properties: {
                  value: { type: ['string', 'number', 'boolean'] },
                  label: { type: 'string' },
                  set: { type: 'object', minProperties: 1, description: 'the recipe paths this value sets (every axis but a figure axis)' },
                },
              },
            ],
          },
        },
        { type: 'object', minProperties: 1, additionalProperties: { type: 'array', minItems: 1, items: scalar } },
      ],
    },
  },
};

/** How a summary column is computed over the columns of one group, in order. */
export const SUMMARY_KINDS = ['mean', 'first-minus-last'] as const;

const summarySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['label', 'of'],
  properties: {
    label: { type: 'string', minLength: 1, description: 'header of the computed column' },
    of: { enum: [...SUMMARY_KINDS], description: 'mean: the average of the group; first-minus-last: its first column minus its last (a decline)' },
  },
};

const baselineSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['row'],
  properties: {
    row: {
      type: ['string', 'number', 'boolean'],
      description:
        'the row every other row is compared with, seed by seed: its label as printed (IOU), its id (kappa=iou) or, with one row axis, its value (iou)',
    },
  },
  description: "a baseline row: the table adds each row's paired difference to it over seeds (same column, same seed) with its 95 % t-interval",
};

/** More seeds than any table needs; past it, a number of seeds is a typo. */
export const MAX_SEEDS = 1000;

const referenceRow: JsonSchema = { type: 'array', items: { type: ['number', 'null'] } };

/** More images than any facial-expression dataset has (AffectNet: about 1M); past it, image arrays cannot be allocated. */
const MAX_IMAGES = 10_000_000;
const IMAGES_BOUND =
  'at most 10 million images: more than any facial-expression dataset has (AffectNet: about 1 million), and the image arrays of more cannot be allocated';

/**
 * The core recipe schema. Properties marked with `x-slot` choose a plugin of that kind; the
 * validator replaces them with the chosen plugin's options schema, so one ajv pass checks the
 * whole recipe with each plugin's own field names.
 */
export function coreSchema() {
  return options(
    {
      title: Type.String({ minLength: 1, description: 'names the paper table the recipe reproduces' }),
      description: Type.Optional(Type.String()),
      seed: Type.Integer({
        minimum: 0,
        maximum: 2 ** 32 - 1,
        'x-bound': 'seeds are 32-bit: the random streams take a seed modulo 2^32, so a larger or negative one would repeat another seed',
        default: 2024,
        description: 'all randomness flows from it',
      }),
      seeds: Type.Integer({
        minimum: 1,
        maximum: MAX_SEEDS,
        'x-bound': `from 1 to ${MAX_SEEDS} seeds: each seed trains every cell once, and more than ${MAX_SEEDS} is a typo`,
        default: 1,
        description:
          "how many seeds every cell runs: seed k is the recipe's seed + k (seed 0 is the seed itself); a table entry is the mean ± std over them with a 95 % t-interval",
      }),
      scale: choice(SCALES, { default: 'small', description: 'which entry of `scales` applies (paper = as published)' }),
      plugins: Type.Array(Type.String(), { default: [], description: 'extra plugin files, relative to the recipe' }),
      scales: Type.Optional(
        Type.Unsafe<Record<string, unknown>>({
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(SCALES.map((s) => [s, { type: 'object' }])),
          description: 'overlays merged onto the recipe at each scale',
        }),
      ),
      data: options(
        {
          dataset: slot('dataset', 'synthetic-faces', 'the facial-expression dataset'),
          labels: slot('sampler', 'fraction', 'which training images keep their labels; the rest form the unlabeled pool'),
          boxes: slot('face-boxes', 'auto', "where FaceMix gets face boxes (auto: the dataset's annotated boxes, a face detector where it has none)"),
          roots: Type.Unsafe<Record<string, string>>({
            type: 'object',
            'x-keys-of': { kind: 'dataset', option: 'root' },
            additionalProperties: { type: 'string', minLength: 1 },
            default: {},
            description:
              "dataset folders by dataset plugin name, for the cells that read that dataset and do not set its root themselves (relative to the recipe's folder): `--set data.roots.rafdb=DIR` points a table's RAF-DB columns at DIR",
          }),
          size: options(
            {
              train: nullable(Type.Integer({ minimum: 1, maximum: MAX_IMAGES, 'x-bound': IMAGES_BOUND }), {
                default: null,
                description: 'training images (null: all)',
              }),
              test: nullable(Type.Integer({ minimum: 1, maximum: MAX_IMAGES, 'x-bound': IMAGES_BOUND }), {
                default: null,
                description: 'test images (null: all)',
              }),
            },
            {
              additionalProperties: false,
              default: {},
              description: 'how many images to use; a stratified, seeded subset of a real dataset, or the size a synthetic set is drawn at',
            },
          ),
        },
        { additionalProperties: false, default: {} },
      ),
      model: options({ backbone: slot('backbone', 'vit') }, { additionalProperties: false, default: {} }),
      pipeline: options(
        {
          pretrain: slot('pretrain', 'mae', 'stage 1: self-supervised pre-training'),
          supervised: slot('finetune', 'supervised', 'stage 2: supervised fine-tuning on the labeled images'),
          semi: slot('ssl', 'ema-teacher', 'stage 3: semi-supervised fine-tuning'),
          tune: slot('tuner', 'none', 'hyper-parameter search before the final training'),
        },
        { additionalProperties: false, default: {} },
      ),
      evaluation: options(
        {
          batch_size: Type.Integer({ minimum: 1, ...BATCH_LIMIT, default: 64 }),
          use_ema: Type.Boolean({ default: true, description: 'evaluate the EMA weights when the stage keeps them' }),
          keep_model: Type.Boolean({
            default: true,
            description:
              "keep the evaluated weights in the cell's model/ folder (for ssfer export); false keeps none, for a recipe that trains nothing (params-flops)",
          }),
          analyses: slotList(
            'analysis',
            "studies of the evaluated model on the cell's test split (or held-out fold), run after its evaluation: figures under analysis.<name> in metrics.json, files and pictures in the cell's folder",
          ),
          linear_probe: options(
            {
              enabled: Type.Boolean({
                default: true,
                description: "train a linear classifier on the cell's own labeled images and flag the cell when it does not beat it",
              }),
              backbone: slot('backbone', { use: 'linear' }, "the probe's model; its image_size is the cell's"),
              training: slot(
                'finetune',
                {
                  use: 'supervised',
                  epochs: 40,
                  few_labels_epochs: 40,
                  warmup_epochs: 12,
                  lr: 2e-3,
                  min_lr: 1e-8,
                  warmup_lr: 8e-5,
                  batch_size: 64,
                  weight_decay: 0.05,
                  betas: [0.9, 0.999],
                  label_smoothing: 0.1,
                  ema_decay: null,
                  mixing: { use: 'none' },
                  augment: { use: 'none' },
                },
                'how the probe trains (on the labeled images only)',
              ),
            },
            {
              additionalProperties: false,
              default: {},
              description: 'a sanity baseline per cell: a linear classifier on the pixels, trained on the same labels; health.linear_probe_accuracy',
            },
          ),
        },
        { additionalProperties: false, default: {} },
      ),
      tracking: slot('tracker', 'local', 'where runs are recorded'),
      launcher: slot(
        'launcher',
        'inline',
        'where the units of the run (one seed of one cell each) are trained: inline (this process), processes (worker processes on this machine), slurm (a SLURM job array)',
      ),
      grid: Type.Optional(
        Type.Unsafe<unknown>({
          type: 'object',
          additionalProperties: false,
          properties: {
            rows: { type: 'array', items: axisSchema },
            columns: { type: 'array', items: axisSchema },
            metric: {
              type: 'string',
              minLength: 1,
              default: 'accuracy',
              description:
                "the figure each table entry shows: a dotted path into the cell's metrics.json (accuracy, health.semi_gain, analysis.params-flops.params_m); {axis} stands for the value of a figure axis, an axis that chooses the figure and sets nothing",
            },
            percent: {
              type: 'boolean',
              default: true,
              description: 'the figure is a share in [0, 1], shown in % (accuracy); false shows it as written (parameters in M, FLOPs in G)',
            },
            summary: {
              type: 'array',
              items: summarySchema,
              description: 'computed columns (Average, Decline) after the columns of the innermost column axis, once per value of the outer ones',
            },
            baseline: baselineSchema,
          },
        }),
      ),
      reference: Type.Optional(
        Type.Unsafe<unknown>({
          // null: none (what --set grid.rows=… leaves: the paper's numbers belong to the written grid)
          type: ['object', 'null'],
          additionalProperties: false,
          required: ['values'],
          properties: {
            source: { type: 'string', description: 'where the numbers come from' },
            metric: { type: 'string', default: 'accuracy (%)' },
            values: {
              type: 'array',
              items: referenceRow,
              description:
                'one list per grid row, laid out as the table is printed: one number per grid column, and after each column group its summary columns',
            },
            others: {
              type: 'array',
              description: "the paper's rows for methods not run here, shown under the table",
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['label', 'values'],
                properties: { label: { type: 'string', minLength: 1 }, values: referenceRow },
              },
            },
          },
        }),
      ),
    },
    { additionalProperties: false },
  );
}

/**
 * A validated cell configuration: every core key typed, defaults filled in. Plugin slots are
 * `{ use, ...options }`; their options are read through the chosen plugin's own type.
 */
export type CellConfig = Static<ReturnType<typeof coreSchema>>;
