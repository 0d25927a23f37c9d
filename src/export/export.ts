import fs from 'node:fs';
import path from 'node:path';
import { findModelDir, loadModelBundle, readManifest, SSFER_VERSION, type ModelManifest } from '../model/bundle.ts';
import { writeAtomic } from '../core/files.ts';
import { INPUT_NAME, OUTPUT_NAME } from '../onnx/graph.ts';
import { encodeModel, type OnnxGraph } from '../onnx/proto.ts';
import { createRegistry, type PluginRegistry } from '../core/registry.ts';

/** What `ssfer export` cannot do with what it was given (exit status 2). */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

export const EXPORT_FORMATS = ['onnx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The registered backbones whose models export (their factory has `onnxGraph`), created with their default options. */
export function onnxBackbones(registry: PluginRegistry): string[] {
  return registry.namesOf('backbone').filter((name) => {
    try {
      return typeof registry.create('backbone', { use: name }, { seed: 0, scale: 'paper', recipeDir: '.' }).onnxGraph === 'function';
    } catch {
      return false;
    }
  });
}

export interface ExportResult {
  readonly file: string;
  readonly bytes: number;
  readonly manifest: ModelManifest;
  readonly graph: { readonly nodes: number; readonly initializers: number; readonly opset: number };
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * The model's metadata_props: what a user of the .onnx file needs to feed it and read its output,
 * without ssfer. Values that are not plain words are JSON.
 */
export function onnxMetadata(m: ModelManifest): Record<string, string> {
  const p = m.preprocessing;
  return {
    classes: JSON.stringify(m.classes),
    input: INPUT_NAME,
    output: OUTPUT_NAME,
    output_kind: 'logits (softmax over the last axis gives the class probabilities)',
    image_size: String(p.image_size),
    layout: p.layout,
    channel_order: p.channel_order,
    value_range: JSON.stringify(p.value_range),
    resize: p.resize,
    mean: JSON.stringify(p.mean),
    std: JSON.stringify(p.std),
    normalisation: 'inside the graph: (pixels − mean) / std per channel; feed plain pixels in value_range',
    ...(p.face_box
      ? {
          face_box: JSON.stringify(p.face_box.median),
          face_crop:
            'crop a photo so that the face box found in it lands at face_box (x1, y1, x2, y2 as shares of the side: the median box of the training images), then squeeze the crop to image_size',
        }
      : {}),
    preprocessing: JSON.stringify({
      image_size: p.image_size,
      layout: p.layout,
      channel_order: p.channel_order,
      value_range: p.value_range,
      resize: p.resize,
      mean: p.mean,
      std: p.std,
      ...(p.face_box ? { face_box: p.face_box.median } : {}),
      normalised_in_graph: true,
    }),
    backbone: JSON.stringify({ plugin: m.backbone.plugin, config: m.backbone.config }),
    source: JSON.stringify(m.source),
    ssfer_version: m.ssfer_version,
    exported_by: `ssfer ${SSFER_VERSION}`,
    model_format_version: String(m.format_version),
  };
}

/** Where the .onnx file goes, checked before any work is done. */
function outputFile(modelDir: string, out: string | undefined): string {
  const file = out ?? path.join(modelDir, 'model.onnx');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory())
    throw new ExportError(`--out ${file} is a folder; name the file to write, e.g. ${path.join(file, 'model.onnx')}`);
  if (path.extname(file).toLowerCase() !== '.onnx') throw new ExportError(`--out ${file}: name a file ending in .onnx`);
  const parent = path.dirname(path.resolve(file));
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory())
    throw new ExportError(`--out ${file}: folder ${path.dirname(file)} does not exist; create it or choose another --out`);
  try {
    fs.accessSync(parent, fs.constants.W_OK);
  } catch {
    throw new ExportError(`--out ${file}: folder ${path.dirname(file)} is not writable; choose another --out`);
  }
  return file;
}

/** Exports a saved model (a cell folder or its model/ folder) to a file. */
export async function exportModel(
  given: string,
  opts: { format?: string; out?: string; pluginFiles?: readonly string[]; registry?: PluginRegistry } = {},
): Promise<ExportResult> {
  const format = opts.format ?? 'onnx';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new ExportError(`--format ${format}: not a known format; formats: ${EXPORT_FORMATS.join(', ')}`);
  const dir = findModelDir(given);
  const manifest = readManifest(dir);
  const file = outputFile(dir, opts.out);
  const registry = opts.registry ?? (await createRegistry(opts.pluginFiles ?? []));
  const loaded = await loadModelBundle(dir, { registry });
  let graph: OnnxGraph;
  try {
    if (!loaded.factory.onnxGraph) {
      throw new ExportError(
        `${dir}: the model's backbone '${manifest.backbone.plugin}' does not export to ONNX; backbones that export: ${onnxBackbones(registry).join(', ')}`,
      );
    }
    graph = loaded.factory.onnxGraph(loaded.model);
  } finally {
    loaded.model.dispose();
  }
  const metadata = onnxMetadata(manifest);
  const s = manifest.source;
  const bytes = encodeModel(graph, {
    producer: { name: 'ssfer', version: SSFER_VERSION },
    modelVersion: manifest.format_version,
    doc: `${manifest.backbone.plugin} expression classifier (${manifest.classes.length} classes) from cell ${s.cell} of ${s.recipe}: ${s.dataset.display}${s.dataset.stand_in ? ' (synthetic stand-in)' : ''}, ${s.budget}, test accuracy ${(s.test_accuracy * 100).toFixed(2)}%`,
    metadata,
  });
  try {
    writeAtomic(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new ExportError(`--out ${file}: cannot write it (${(err as Error).message})`);
  }
  return {
    file,
    bytes: bytes.length,
    manifest,
    graph: { nodes: graph.nodes.length, initializers: graph.initializers?.length ?? 0, opset: graph.opset ?? 13 },
    metadata,
  };
}
