import type { ParameterCount } from '../../../src/contracts/backbone.ts';
import { choice, nullable, options, Type, type Static } from '../../../src/core/schema.ts';
import type { GeluKind } from './layers.ts';

export const VIT_PRESET_NAMES = ['tiny', 'small', 'base', 'large'] as const;
export type VitPreset = (typeof VIT_PRESET_NAMES)[number];

/** Published ViT sizes (Dosovitskiy et al.; DeiT for tiny and small). */
export const VIT_PRESETS: Readonly<Record<VitPreset, { dim: number; depth: number; heads: number; mlpRatio: number }>> = {
  tiny: { dim: 192, depth: 12, heads: 3, mlpRatio: 4 },
  small: { dim: 384, depth: 12, heads: 6, mlpRatio: 4 },
  base: { dim: 768, depth: 12, heads: 12, mlpRatio: 4 },
  large: { dim: 1024, depth: 24, heads: 16, mlpRatio: 4 },
};

const nullableInt = (description: string) => nullable(Type.Integer({ minimum: 1 }), { default: null, description });

/**
 * The plugin's options. Every one is optional in the type: `resolveVitConfig` fills in what is
 * missing, so code may build a ViT from a few sizes (the benchmark does).
 */
export const vitOptions = options(
  {
    preset: Type.Optional(
      choice(VIT_PRESET_NAMES, {
        default: 'base',
        description: 'Published size: tiny 192/12/3, small 384/12/6, base 768/12/12, large 1024/24/16 (width/depth/heads), MLP ratio 4',
      }),
    ),
    dim: Type.Optional(nullableInt('Token width; null takes the preset’s')),
    depth: Type.Optional(nullableInt('Number of transformer blocks; null takes the preset’s')),
    heads: Type.Optional(nullableInt('Attention heads (must divide dim); null takes the preset’s')),
    mlp_ratio: Type.Optional(
      nullable(Type.Number({ exclusiveMinimum: 0 }), { default: null, description: 'MLP hidden width / dim; null takes the preset’s (4)' }),
    ),
    image_size: Type.Optional(Type.Integer({ minimum: 1, default: 224, description: 'Input height = width in pixels' })),
    patch_size: Type.Optional(Type.Integer({ minimum: 1, default: 16, description: 'Patch side in pixels (must divide image_size)' })),
    channels: Type.Optional(Type.Integer({ minimum: 1, default: 3, description: 'Image channels' })),
    pos_embed: Type.Optional(
      choice(['sincos', 'learned'], {
        default: 'sincos',
        description: 'Position embedding at the start: 2-D sin-cos as MAE uses, or learned (truncated normal, std 0.02)',
      }),
    ),
    pos_embed_trainable: Type.Optional(
      Type.Boolean({
        default: true,
        description:
          'Fine-tuning trains the position embedding (timm; the authors load the MAE’s sin-cos values into it); false keeps it fixed. MAE pre-training keeps a sin-cos embedding fixed either way, as MAE does',
      }),
    ),
    class_token: Type.Optional(Type.Boolean({ default: true, description: 'Prepend a learnable class token' })),
    pool: Type.Optional(
      choice(['cls', 'mean'], {
        default: 'cls',
        description: 'Features for the head: the class token, or the mean of the normalised patch tokens (MAE fine-tuning pools by mean)',
      }),
    ),
    gelu: Type.Optional(choice(['erf', 'tanh'], { default: 'erf', description: 'GELU form: exact (erf) or the tanh approximation' })),
    qkv_bias: Type.Optional(Type.Boolean({ default: true, description: 'Bias on the query/key/value projection' })),
    layer_norm_eps: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 1e-6, description: 'LayerNorm epsilon (timm/MAE use 1e-6)' })),
    dropout: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.99, default: 0, description: 'Dropout after the position embedding, attention projection and MLP layers' }),
    ),
    drop_path: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.99, default: 0, description: 'Stochastic depth rate of the last block (linear from 0 over depth)' }),
    ),
    input_mean: Type.Optional(
      Type.Array(Type.Number(), {
        minItems: 1,
        default: [0.588, 0.459, 0.402],
        description:
          'Per-channel mean subtracted from the [0, 1] images before patchify (the authors’ face statistics, in pre-training and fine-tuning; ImageNet’s: 0.485, 0.456, 0.406)',
      }),
    ),
    input_std: Type.Optional(
      Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
        minItems: 1,
        default: [0.228, 0.202, 0.19],
        description: 'Per-channel std the centred images are divided by (the authors’ face statistics; ImageNet’s: 0.229, 0.224, 0.225)',
      }),
    ),
    head: Type.Optional(
      options(
        {
          hidden: Type.Optional(
            Type.Integer({ minimum: 0, default: 0, description: '0: linear head; otherwise the hidden width of an MLP head (Linear → GELU → Linear)' }),
          ),
          init_std: Type.Optional(
            nullable(Type.Number({ exclusiveMinimum: 0 }), {
              default: null,
              description: 'Truncated-normal std of the classifier weight (MAE fine-tuning: 2e-5); null: Xavier uniform',
            }),
          ),
        },
        { additionalProperties: false, default: { hidden: 0, init_std: null }, description: 'Classifier on the pooled features' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The plugin's options as a recipe writes them (after validation every one is there). */
export type VitOptions = Static<typeof vitOptions>;

export type VitConfig = {
  readonly preset: VitPreset | null;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly channels: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpRatio: number;
  /** round(dim · mlpRatio). */
  readonly mlpDim: number;
  /** The position embedding's start: 'sincos', MAE's 2-D embedding; 'learned', N(0, .02) truncated. */
  readonly posEmbed: 'sincos' | 'learned';
  /** Whether fine-tuning trains it (a sin-cos one stays fixed while MAE pre-trains, see BuildOptions). */
  readonly posEmbedTrainable: boolean;
  readonly classToken: boolean;
  readonly pool: 'cls' | 'mean';
  readonly gelu: GeluKind;
  readonly qkvBias: boolean;
  readonly layerNormEps: number;
  readonly dropout: number;
  readonly dropPath: number;
  /** 0: linear classifier; otherwise hidden width of an MLP head (Linear → GELU → Linear). */
  readonly headHidden: number;
  /** Std of a truncated-normal init of the classifier weight; null: Xavier uniform like the other linears. */
  readonly headInitStd: number | null;
  /** Per-channel mean and std the [0, 1] input is normalised with before patchify (the authors' face statistics by default). */
  readonly inputMean: readonly number[];
  readonly inputStd: readonly number[];
};

/** The normalisation timm and MAE apply to ViT inputs (the CNN backbones' default). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** The authors' face-image statistics, which their MAE pre-training and fine-tuning normalise with (the ViT's default). */
export const FACE_MEAN = [0.588, 0.459, 0.402] as const;
export const FACE_STD = [0.228, 0.202, 0.19] as const;

export function resolveVitConfig(o: VitOptions = {}): VitConfig {
  const preset = o.preset ?? 'base';
  const base = VIT_PRESETS[preset];
  if (!base) throw new Error(`vit: unknown preset '${preset}'; choose one of ${Object.keys(VIT_PRESETS).join(', ')}`);
  const overridden = o.dim != null || o.depth != null || o.heads != null || o.mlp_ratio != null;
  const cfg: VitConfig = {
    preset: overridden ? null : preset,
    imageSize: o.image_size ?? 224,
    patchSize: o.patch_size ?? 16,
    channels: o.channels ?? 3,
    dim: o.dim ?? base.dim,
    depth: o.depth ?? base.depth,
    heads: o.heads ?? base.heads,
    mlpRatio: o.mlp_ratio ?? base.mlpRatio,
    mlpDim: Math.round((o.dim ?? base.dim) * (o.mlp_ratio ?? base.mlpRatio)),
    posEmbed: o.pos_embed ?? 'sincos',
    posEmbedTrainable: o.pos_embed_trainable ?? true,
    classToken: o.class_token ?? true,
    pool: o.pool ?? 'cls',
    gelu: o.gelu ?? 'erf',
    qkvBias: o.qkv_bias ?? true,
    layerNormEps: o.layer_norm_eps ?? 1e-6,
    dropout: o.dropout ?? 0,
    dropPath: o.drop_path ?? 0,
    headHidden: o.head?.hidden ?? 0,
    headInitStd: o.head?.init_std ?? null,
    inputMean: o.input_mean ?? [...FACE_MEAN],
    inputStd: o.input_std ?? [...FACE_STD],
  };
  const problems: string[] = [];
  const positiveInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) problems.push(`${what} must be a positive integer, got ${v}`);
  };
  if (cfg.inputMean.length !== cfg.channels || cfg.inputStd.length !== cfg.channels) {
    problems.push(`input_mean and input_std need one value per channel (${cfg.channels})`);
  }
  if (cfg.inputStd.some((v) => !(v > 0))) problems.push('input_std values must be positive');
  positiveInt(cfg.dim, 'dim');
  positiveInt(cfg.depth, 'depth');
  positiveInt(cfg.heads, 'heads');
  positiveInt(cfg.imageSize, 'image_size');
  positiveInt(cfg.patchSize, 'patch_size');
  positiveInt(cfg.channels, 'channels');
  if (!(cfg.mlpRatio > 0)) problems.push(`mlp_ratio must be positive, got ${cfg.mlpRatio}`);
  if (cfg.dim % cfg.heads !== 0) problems.push(`dim ${cfg.dim} is not divisible by heads ${cfg.heads}`);
  if (cfg.imageSize % cfg.patchSize !== 0) problems.push(`image_size ${cfg.imageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  if (cfg.posEmbed === 'sincos' && cfg.dim % 4 !== 0) problems.push(`pos_embed 'sincos' needs dim divisible by 4, got ${cfg.dim}`);
  if (!cfg.classToken && cfg.pool === 'cls') problems.push(`pool 'cls' needs class_token: true (or use pool: mean)`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) problems.push(`dropout must be in [0, 1), got ${cfg.dropout}`);
  if (!(cfg.dropPath >= 0 && cfg.dropPath < 1)) problems.push(`drop_path must be in [0, 1), got ${cfg.dropPath}`);
  if (!Number.isInteger(cfg.headHidden) || cfg.headHidden < 0) problems.push(`head.hidden must be an integer ≥ 0, got ${cfg.headHidden}`);
  if (problems.length > 0) throw new Error(`vit options: ${problems.join('; ')}`);
  return cfg;
}

export function numPatches(cfg: VitConfig): number {
  return (cfg.imageSize / cfg.patchSize) ** 2;
}

/** Counted from the configuration alone, so the large presets need no memory to be checked. */
export function vitParameterCount(cfg: VitConfig, numClasses: number): ParameterCount {
  const { dim: d, depth, mlpDim: m, channels } = cfg;
  const patchDim = cfg.patchSize * cfg.patchSize * channels;
  const tokens = numPatches(cfg) + (cfg.classToken ? 1 : 0);
  const block = 2 * 2 * d + d * 3 * d + (cfg.qkvBias ? 3 * d : 0) + d * d + d + d * m + m + m * d + d;
  const head = cfg.headHidden === 0 ? d * numClasses + numClasses : d * cfg.headHidden + cfg.headHidden + cfg.headHidden * numClasses + numClasses;
  const positions = tokens * d;
  const total = patchDim * d + d + (cfg.classToken ? d : 0) + positions + depth * block + 2 * d + head;
  return { total, trainable: cfg.posEmbedTrainable ? total : total - positions };
}
