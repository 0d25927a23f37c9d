import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import type { Split } from './dataset.ts';

/** A labeled batch: NHWC images in [0, 1], integer labels, face boxes (x1, y1, x2, y2 pixels). */
export interface Batch {
  readonly images: tf.Tensor4D;
  readonly labels: tf.Tensor1D;
  readonly boxes: tf.Tensor2D;
}

/** What a mixing strategy needs from the model and the stage, inside the gradient closure. */
export interface MixingContext {
  readonly numClasses: number;
  /** Label smoothing ε of the mixed (virtual) images' soft targets (the authors: 0.1, in their Mixup). */
  readonly labelSmoothing: number;
  /** Label smoothing ε of the cross-entropy on real images: FaceMix's L_i, L_j and no mixing (the authors: 0, plain cross-entropy). */
  readonly realLabelSmoothing: number;
  readonly rng: Rng;
  /** Logits of the model being trained (called inside the gradient tape). */
  logits(images: tf.Tensor4D): tf.Tensor2D;
}

/**
 * `mixing` plugins: turn a labeled batch into the supervised loss (a scalar), with whatever
 * running figures the strategy reports per step (Mixup's λ, FaceMix's mean κ), which go to the
 * step log, the curves and tracking under their own names.
 */
export interface MixingStrategy {
  readonly name: string;
  loss(batch: Batch, ctx: MixingContext): { loss: tf.Scalar; stats: Readonly<Record<string, number>> };
  /**
   * After each epoch of the stage, over the steps since the last call: a guard against a
   * degenerate epoch throws (the stage stops with its message); a note for the results (a guard
   * the recipe waived) is returned.
   */
  endEpoch?(epoch: number): string | void;
}

/** `augment` plugins: a random transform of a batch; boxes follow the images. */
export interface Augmentation {
  readonly name: string;
  apply(images: tf.Tensor4D, boxes: tf.Tensor2D, rng: Rng): { images: tf.Tensor4D; boxes: tf.Tensor2D };
}

/** `sampler` plugins: which training images keep their labels. */
export interface LabelSplit {
  /** Indices into the training split that keep their labels. */
  readonly labeled: Int32Array;
  /** Indices whose labels are hidden (the unlabeled pool). */
  readonly unlabeled: Int32Array;
  /**
   * Labels used for training, one per training image (indexed like the labels given to split);
   * they differ from the true ones only where noise is injected. Absent: the true labels.
   */
  readonly labels?: Int32Array;
  /**
   * Indices held out of training and used as the evaluation split instead of the dataset's test
   * split (k-fold cross-validation on the training set); disjoint from labeled and unlabeled.
   */
  readonly heldOut?: Int32Array;
}

/** What a sampler may know about the training split besides its labels. */
export interface SplitInfo {
  /** Official cross-validation fold per training image, for datasets that define folds (Adience). */
  readonly folds?: Int32Array;
}

export interface Sampler {
  readonly name: string;
  /** A short description of the budget for tables, such as `5%` or `25 labels/class`. */
  readonly budget: string;
  split(labels: Int32Array, numClasses: number, rng: Rng, info?: SplitInfo): LabelSplit;
}

/** What the pipeline asks a `face-boxes` plugin for besides the images. */
export interface BoxRequest {
  /** Height = width of the split's images in pixels. */
  readonly imageSize: number;
  /** The run's cache folder (detections are kept under it, keyed by image content); absent: none. */
  readonly cacheDir?: string;
  /** Only these images need boxes (the others keep the split's own); absent: every image. */
  readonly only?: Int32Array;
  /** Where progress lines go during a long detection; absent: nowhere. */
  readonly note?: (text: string) => void;
}

/** Face boxes for a split, and what they are. */
export interface FaceBoxes {
  /** Pixel corners (x1, y1, x2, y2) per image, in the split's image size; length size·4. */
  readonly boxes: Float32Array;
  /** One sentence for the table notes: where the boxes come from and how many fell back. */
  readonly note: string;
}

/** A photo at its own resolution: 8-bit RGB pixels, row by row. */
export interface Photo {
  readonly width: number;
  readonly height: number;
  /** width·height·3 bytes. */
  readonly pixels: Uint8Array;
}

/** A face found in a photo: its box (x1, y1, x2, y2 in the photo's pixels) and the detector's score. */
export interface FoundFace {
  readonly box: readonly [number, number, number, number];
  readonly score: number;
}

/** `face-boxes` plugins: a face box per training image. */
export interface FaceBoxSource {
  readonly name: string;
  boxes(split: Split, request: BoxRequest): Promise<FaceBoxes>;
  /** What `faces` calls the detector, for messages: `face-api ssd-mobilenet (min confidence 0.5)`. */
  readonly detector?: string;
  /**
   * Every face in one photo (`ssfer predict`), most confident first; only plugins that run a
   * detector have it. Boxes are clipped to the photo.
   */
  faces?(photo: Photo): Promise<FoundFace[]>;
}

declare module '../core/plugin.ts' {
  interface PluginContracts {
    sampler: Sampler;
    'face-boxes': FaceBoxSource;
    mixing: MixingStrategy;
    augment: Augmentation;
  }
}
