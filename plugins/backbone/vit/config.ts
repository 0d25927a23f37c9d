import type { ParameterCount } from '../../../src/contracts/backbone.ts';
import type { GeluKind } from './layers.ts';

export type VitPreset = 'tiny' | 'small' | 'base' | 'large';

/** Published ViT sizes (Dosovitskiy et al.; DeiT for tiny and small). */
export const VIT_PRESETS: Readonly<Record<VitPreset, { dim: number; depth: number; heads: number; mlpRatio: number }>> = {
  tiny: { dim: 192, depth: 12, heads: 3, mlpRatio: 4 },
  small: { dim: 384, depth: 12, heads: 6, mlpRatio: 4 },
  base: { dim: 768, depth: 12, heads: 12, mlpRatio: 4 },
  large: { dim: 1024, depth: 24, heads: 16, mlpRatio: 4 },
};

/** The plugin's options as a recipe writes them (after defaults are filled in). */
export interface VitOptions {
  preset?: VitPreset;
  dim?: number | null;
  depth?: number | null;
  heads?: number | null;
  mlp_ratio?: number | null;
  image_size?: number;
  patch_size?: number;
  channels?: number;
  pos_embed?: 'sincos' | 'learned';
  class_token?: boolean;
  pool?: 'cls' | 'mean';
  gelu?: GeluKind;
  qkv_bias?: boolean;
  layer_norm_eps?: number;
  dropout?: number;
  drop_path?: number;
  head?: { hidden?: number; init_std?: number | null };
  input_mean?: number[];
  input_std?: number[];
}

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
  /** 'sincos': MAE's fixed 2-D embedding (not trained); 'learned': a trained one, init N(0, .02) truncated. */
  readonly posEmbed: 'sincos' | 'learned';
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
  /** Per-channel mean and std the [0, 1] input is normalised with before patchify (ImageNet's by default). */
  readonly inputMean: readonly number[];
  readonly inputStd: readonly number[];
};

/** The normalisation timm and MAE apply to ViT inputs. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

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
    classToken: o.class_token ?? true,
    pool: o.pool ?? 'cls',
    gelu: o.gelu ?? 'erf',
    qkvBias: o.qkv_bias ?? true,
    layerNormEps: o.layer_norm_eps ?? 1e-6,
    dropout: o.dropout ?? 0,
    dropPath: o.drop_path ?? 0,
    headHidden: o.head?.hidden ?? 0,
    headInitStd: o.head?.init_std ?? null,
    inputMean: o.input_mean ?? [...IMAGENET_MEAN],
    inputStd: o.input_std ?? [...IMAGENET_STD],
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
  const trainable = patchDim * d + d + (cfg.classToken ? d : 0) + (cfg.posEmbed === 'learned' ? tokens * d : 0) + depth * block + 2 * d + head;
  const total = trainable + (cfg.posEmbed === 'sincos' ? tokens * d : 0);
  return { total, trainable };
}
