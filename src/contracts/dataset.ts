import type { Json } from '../core/json.ts';

/** One split of a facial-expression dataset, held in memory as dense arrays. */
export interface Split {
  /** Number of images. */
  readonly size: number;
  /** NHWC float32 pixels in [0, 1], length size·H·W·3. */
  readonly images: Float32Array;
  /** Class index per image, length size. */
  readonly labels: Int32Array;
  /** Face box per image, pixel corners (x1, y1, x2, y2) in the stored image size; length size·4. */
  readonly boxes: Float32Array;
  /**
   * 1 where the image's box is the dataset's own (annotated, or the drawn face of synthetic
   * data), 0 where the dataset has none and `boxes` holds the whole image; length size. Absent:
   * no image has an annotated box. A `face-boxes` plugin decides from it whether to detect.
   */
  readonly annotatedBoxes?: Uint8Array;
  /** Identity per image where the dataset knows it (synthetic data does); otherwise absent. */
  readonly identities?: Int32Array;
  /**
   * Official fold of each image where the dataset defines folds (Adience), length size; a k-fold
   * sampler holds these out in turn. Absent when the dataset has no official folds.
   */
  readonly folds?: Int32Array;
}

export interface FerData {
  /** Dataset name as chosen in the recipe (for example `rafdb`). */
  readonly name: string;
  /** Display name for tables (for example `RAF-DB`). */
  readonly displayName: string;
  /** Class names in label order. */
  readonly classes: readonly string[];
  /** Height = width of the stored images in pixels. */
  readonly imageSize: number;
  readonly train: Split;
  readonly test: Split;
  /**
   * Set when the data is not the named dataset itself but a synthetic stand-in with its classes
   * and label budgets (the dataset is not configured locally); tables say so.
   */
  readonly standIn?: string;
  /** The folder the data was read from (absent for drawn data). */
  readonly source?: string;
  /**
   * What the loader left out and why (rows a dataset's own rules drop, entries skipped under
   * `on_error: skip`), one sentence each, for logs and tables; absent when nothing was left out.
   */
  readonly notes?: readonly string[];
}

/** An unlabeled pool for pre-training (faces or generic images); labels are absent or meaningless. */
export interface ImagePool {
  readonly kind: 'faces' | 'generic';
  readonly imageSize: number;
  readonly size: number;
  readonly images: Float32Array;
  /** Present when the pool has classes (supervised pre-training uses them). */
  readonly labels?: Int32Array;
  readonly numClasses?: number;
  readonly standIn?: string;
}

/** What the pipeline asks a dataset for: images at the model's size, optionally a subset. */
export interface LoadRequest {
  /** Height = width the images are resized (or drawn) to. */
  readonly imageSize: number;
  /** Training images wanted (a stratified, seeded subset); null: all. */
  readonly trainSize: number | null;
  /** Test images wanted; null: all. */
  readonly testSize: number | null;
  /** Folder for the decoded-image cache (entries keyed by content); absent: no cache. */
  readonly cacheDir?: string;
}

/** What a `dataset` plugin creates; creating one is cheap (nothing is read before `load`). */
export interface DatasetSource {
  load(request: LoadRequest): Promise<FerData>;
  /** The pre-training pool that goes with this dataset (a face-recognition pool by default). */
  pool(kind: 'faces' | 'generic', size: number, imageSize: number): Promise<ImagePool>;
  /**
   * What `pool` draws depends on, as JSON: it enters the pre-training's stage key, so the cells of
   * datasets whose pools are the same (every column of a table, as a rule) share one pre-training.
   */
  poolKey(): Json;
  /**
   * A picture of what the classes look like at an image size, PNG bytes (the synthetic faces: a
   * few people, each in every expression), which `ssfer run` keeps beside each cell as data.png.
   * Optional: real datasets have no such thing.
   */
  picture?(imageSize: number): Promise<Uint8Array>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    dataset: DatasetSource;
  }
}
