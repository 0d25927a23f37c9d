import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import type { FaceBoxSource, Photo } from '../contracts/training.ts';
import { writeAtomic } from '../core/files.ts';
import type { Json } from '../core/json.ts';
import { createRegistry } from '../core/registry.ts';
import { findModelDir, loadModelBundle, type ModelManifest } from '../model/bundle.ts';
import { resolveConfig } from '../recipe/recipe.ts';
import { AUTHORS_PLACEMENT, cropPixels, faceCrop, type Box, type Rect } from './crop.ts';
import { drawFaces } from './draw.ts';

/** What `ssfer predict` cannot use (a photo that is not an image or shows no face, a bad --out): exit status 2. */
export class PredictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PredictError';
  }
}

export interface PredictOptions {
  /** Folder the photos with the faces drawn on them are written to (created when missing). */
  readonly out: string;
  /** Classify each whole photo (squeezed to the model's size, as training images are) instead of its faces. */
  readonly wholeImage?: boolean;
  /** The face detector, a face-boxes slot written as YAML (`face-api`, `{use: face-api, model: tiny}`); default face-api. */
  readonly detector?: string;
  readonly pluginFiles?: readonly string[];
}

export interface FacePrediction {
  /** The face's box in the photo's pixels (x1, y1, x2, y2), after EXIF orientation; the whole photo with --whole-image. */
  readonly box: Box;
  /** The detector's score; null with --whole-image. */
  readonly score: number | null;
  /** The part of the photo the model saw (it may reach past the edges: mirrored there). */
  readonly crop: Rect;
  readonly class: string;
  readonly probability: number;
  /** Every class's probability (softmax of the logits), in the model's class order. */
  readonly probabilities: Readonly<Record<string, number>>;
}

export interface ImagePrediction {
  readonly file: string;
  readonly width: number;
  readonly height: number;
  readonly faces: readonly FacePrediction[];
  /** The photo with the boxes and labels drawn. */
  readonly output: string;
}

export interface Prediction {
  readonly model: { readonly dir: string; readonly manifest: ModelManifest };
  /** How the faces were found: the detector, or `whole image`. */
  readonly detector: string;
  /** Where a face box is placed in the crop (x1, y1, x2, y2 as shares of its side) and where that comes from; null with --whole-image. */
  readonly placement: { readonly box: readonly [number, number, number, number]; readonly from: string } | null;
  readonly images: readonly ImagePrediction[];
}

const FORMATS = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';

/** A photo file decoded to RGB at its own resolution, turned upright by its EXIF orientation. */
export async function readPhoto(file: string): Promise<Photo & { readonly format: string }> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PredictError(`${file}: no such file`);
    if (code === 'EISDIR') throw new PredictError(`${file}: a folder, not an image; name image files (${FORMATS})`);
    throw new PredictError(`${file}: cannot be read (${code ?? (err as Error).message})`);
  }
  if (bytes.length === 0) throw new PredictError(`${file}: empty (0 bytes); name an image file (${FORMATS})`);
  try {
    const image = sharp(bytes);
    const meta = await image.metadata();
    const { data, info } = await image.rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), format: meta.format ?? 'unknown' };
  } catch (err) {
    throw new PredictError(`${file}: not an image that can be read (${(err as Error).message.split('\n')[0]}); name a ${FORMATS} file`);
  }
}

/** Softmax of one row of logits. */
function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The output file of each photo in `out`: `<name>.predicted.jpg|png`, made unique, never one of the inputs. */
function outputNames(files: readonly string[], formats: readonly string[], out: string): string[] {
  const taken = new Set(files.map((f) => path.resolve(f)));
  return files.map((file, i) => {
    const stem = path.basename(file, path.extname(file));
    const ext = formats[i] === 'jpeg' ? '.jpg' : '.png';
    for (let n = 1; ; n++) {
      const candidate = path.join(out, `${stem}.predicted${n > 1 ? `-${n}` : ''}${ext}`);
      if (!taken.has(path.resolve(candidate))) {
        taken.add(path.resolve(candidate));
        return candidate;
      }
    }
  });
}

function checkOut(out: string): void {
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory())
    throw new PredictError(`--out ${out} is a file; name a folder for the pictures with the faces drawn`);
  const existing = (() => {
    let dir = path.resolve(out);
    while (!fs.existsSync(dir)) dir = path.dirname(dir);
    return dir;
  })();
  try {
    fs.accessSync(existing, fs.constants.W_OK);
  } catch {
    throw new PredictError(`--out ${out}: ${existing} is not writable; choose another --out`);
  }
}

/** The face detector a `--detector` value names (a face-boxes slot as YAML), checked like a recipe's slot. */
async function detectorOf(value: string | undefined, pluginFiles: readonly string[]): Promise<FaceBoxSource> {
  const text = value ?? 'face-api';
  const parsed = (parseYaml(text) as Json | undefined) ?? null;
  const slot = typeof parsed === 'string' ? { use: parsed } : parsed;
  const { config, registry } = await resolveConfig([{ path: 'data.boxes', value: slot, loc: { file: `<--detector ${text}>`, line: 1, col: 1 } }], {
    pluginFiles,
  });
  const source = registry.create('face-boxes', config.data.boxes, { seed: 0, scale: 'paper', recipeDir: process.cwd() });
  if (!source.faces) {
    const finders = registry.namesOf('face-boxes').filter((name) => {
      try {
        return typeof registry.create('face-boxes', { use: name }, { seed: 0, scale: 'paper', recipeDir: process.cwd() }).faces === 'function';
      } catch {
        return false;
      }
    });
    throw new PredictError(
      `--detector ${text}: the ${config.data.boxes.use} face boxes cannot find faces in a photo; detectors that can: ${finders.join(', ')}`,
    );
  }
  return source;
}

const pct = (p: number) => `${(100 * p).toFixed(1)} %`;

/**
 * Finds the faces in each photo, crops each as the model's training images were made (the face
 * where faces sat in them, the crop squeezed to the model's size), classifies them with a kept
 * model, and writes each photo with its faces' boxes and classes drawn into `out`. Every photo is
 * read and searched before anything is written: a photo that is not an image or shows no face
 * stops it with one message that names them all, and nothing is written.
 */
export async function predict(modelGiven: string, files: readonly string[], opts: PredictOptions): Promise<Prediction> {
  if (files.length === 0) throw new PredictError('name at least one image after the model');
  checkOut(opts.out);
  const dir = findModelDir(modelGiven);
  const registry = await createRegistry(opts.pluginFiles ?? []);
  const detector = opts.wholeImage ? null : await detectorOf(opts.detector, opts.pluginFiles ?? []);
  const loaded = await loadModelBundle(dir, { registry });
  const { manifest, model } = loaded;
  try {
    const size = manifest.preprocessing.image_size;
    const recorded = manifest.preprocessing.face_box;
    const placement = recorded
      ? { box: recorded.median, from: `the median face box of the model's ${recorded.images} training images (${recorded.boxes})` }
      : { box: AUTHORS_PLACEMENT, from: "the authors' central box [25, 25, 220, 220] at 224 px (the model does not record where its training faces sat)" };

    // Read and search every photo first: a bad one stops everything before anything is written.
    const problems: string[] = [];
    const found: { photo: Photo & { format: string }; boxes: { box: Box; score: number | null }[] }[] = [];
    for (const file of files) {
      try {
        const photo = await readPhoto(file);
        if (!detector) {
          found.push({ photo, boxes: [{ box: [0, 0, photo.width, photo.height], score: null }] });
          continue;
        }
        const faces = await detector.faces!(photo);
        if (faces.length === 0) {
          problems.push(
            `${file}: no face found (${detector.detector ?? detector.name}); --whole-image classifies the whole picture, or try another --detector (e.g. a lower min_confidence)`,
          );
          continue;
        }
        found.push({ photo, boxes: faces.map((f) => ({ box: f.box, score: f.score })) });
      } catch (err) {
        if (!(err instanceof PredictError)) throw err;
        problems.push(err.message);
      }
    }
    if (problems.length === 1) throw new PredictError(`${problems[0]}; nothing was written`);
    if (problems.length > 1)
      throw new PredictError(`${problems.length} of ${files.length} images cannot be used; nothing was written:\n  ${problems.join('\n  ')}`);

    const outputs = outputNames(
      files,
      found.map((f) => f.photo.format),
      opts.out,
    );
    fs.mkdirSync(opts.out, { recursive: true });
    const images: ImagePrediction[] = [];
    for (const [i, { photo, boxes }] of found.entries()) {
      const crops = boxes.map((b) => (opts.wholeImage ? { left: 0, top: 0, width: photo.width, height: photo.height } : faceCrop(b.box, placement.box)));
      const pixels = new Float32Array(crops.length * size * size * 3);
      for (const [k, crop] of crops.entries()) pixels.set(await cropPixels(photo, crop, size), k * size * size * 3);
      const logits = tf.tidy(() => model.logits(tf.tensor4d(pixels, [crops.length, size, size, 3]), { training: false }).arraySync());
      const faces = boxes.map((b, k): FacePrediction => {
        const p = softmax(logits[k]!);
        const best = p.indexOf(Math.max(...p));
        return {
          box: b.box.map((v) => Math.round(v * 10) / 10) as unknown as Box,
          score: b.score === null ? null : Math.round(b.score * 1e4) / 1e4,
          crop: crops[k]!,
          class: manifest.classes[best]!,
          probability: p[best]!,
          probabilities: Object.fromEntries(manifest.classes.map((c, j) => [c, p[j]!])),
        };
      });
      const drawn = await drawFaces(
        photo,
        faces.map((f, k) => ({ box: f.box, label: `${boxes.length > 1 ? `${k + 1} ` : ''}${f.class} ${pct(f.probability)}` })),
        photo.format === 'jpeg' ? 'jpeg' : 'png',
      );
      writeAtomic(outputs[i]!, drawn);
      images.push({ file: files[i]!, width: photo.width, height: photo.height, faces, output: outputs[i]! });
    }
    return {
      model: { dir, manifest },
      detector: detector ? (detector.detector ?? detector.name) : 'whole image',
      placement: detector ? placement : null,
      images,
    };
  } finally {
    model.dispose();
  }
}

/** The prediction as the command prints it: the model, how faces were found and cropped, then per photo its faces. */
export function predictionText(p: Prediction): string {
  const m = p.model.manifest;
  const s = m.source;
  const size = m.preprocessing.image_size;
  const lines = [
    `model ${p.model.dir}: ${m.backbone.plugin}, ${size} px, ${m.classes.length} classes (cell ${s.cell} of ${s.recipe}, test accuracy ${pct(s.test_accuracy)})`,
    p.placement === null
      ? `each whole picture squeezed to ${size} × ${size}, as the training images were`
      : `faces found by ${p.detector}; each cropped so that its box sits at [${p.placement.box.map((v) => v.toFixed(2)).join(', ')}] of the crop (${p.placement.from}), squeezed to ${size} × ${size}`,
  ];
  for (const image of p.images) {
    lines.push('', `${image.file} (${image.width} × ${image.height}): ${image.faces.length} face${image.faces.length === 1 ? '' : 's'} → ${image.output}`);
    image.faces.forEach((f, k) => {
      const ranked = Object.entries(f.probabilities).sort((a, b) => b[1] - a[1]);
      lines.push(
        `  ${k + 1}. [${f.box.map((v) => Math.round(v)).join(', ')}]${f.score === null ? '' : ` score ${f.score.toFixed(2)}`}  ${f.class} ${pct(f.probability)}  (${ranked
          .slice(1)
          .map(([c, v]) => `${c} ${pct(v)}`)
          .join(', ')})`,
      );
    });
  }
  return `${lines.join('\n')}\n`;
}
