/** Pixel corners (x1, y1, x2, y2). */
export type Box = readonly [number, number, number, number];

export interface Detection {
  readonly box: Box;
  readonly score: number;
}

/** IoU on continuous corners (area (x2 − x1)·(y2 − y1)), as the κ plugin measures it; an empty union gives 0. */
export function boxIou(a: Box, b: Box): number {
  const extent = (lo: number, hi: number) => Math.max(0, hi - lo);
  const inter = extent(Math.max(a[0], b[0]), Math.min(a[2], b[2])) * extent(Math.max(a[1], b[1]), Math.min(a[3], b[3]));
  const union = extent(a[0], a[2]) * extent(a[1], a[3]) + extent(b[0], b[2]) * extent(b[1], b[3]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy non-maximum suppression: best score first, dropping every later box whose IoU with a
 * kept one is above `iou` (torchvision's rule, which YOLOv7-face uses). Ties keep input order.
 */
export function nms(detections: readonly Detection[], iou: number): Detection[] {
  const order = detections.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i);
  const kept: Detection[] = [];
  for (const { d } of order) if (kept.every((k) => boxIou(k.box, d.box) <= iou)) kept.push(d);
  return kept;
}

/**
 * Detections from a detector's first output. Two layouts are read, told apart by shape:
 * YOLOv7-face `[1, N, 6+]` rows (cx, cy, w, h, objectness, class score, …landmarks) with score
 * objectness·class; or `[N, 5]` rows (x1, y1, x2, y2, score).
 */
export function decodeOutput(data: Float32Array, dims: readonly number[]): Detection[] {
  const out: Detection[] = [];
  if (dims.length === 3 && dims[0] === 1 && dims[2]! >= 6) {
    const [, n, width] = dims as [number, number, number];
    for (let r = 0; r < n; r++) {
      const o = r * width;
      const [cx, cy, w, h] = [data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!];
      out.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: data[o + 4]! * data[o + 5]! });
    }
    return out;
  }
  if (dims.length === 2 && dims[1] === 5) {
    for (let r = 0; r < dims[0]!; r++) {
      const o = r * 5;
      out.push({ box: [data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!], score: data[o + 4]! });
    }
    return out;
  }
  throw new Error(
    `the detector's output has shape [${dims.join(', ')}]; expected [1, N, 6+] (YOLOv7-face: cx, cy, w, h, objectness, class, …) or [N, 5] (x1, y1, x2, y2, score)`,
  );
}

/**
 * The face box of one image, or null when the detector did not find exactly one face: the
 * authors' rule, after keeping scores above `confidence` and merging duplicates by NMS.
 */
export function singleFace(detections: readonly Detection[], confidence: number, nmsIou: number): Box | null {
  const kept = nms(
    detections.filter((d) => d.score > confidence),
    nmsIou,
  );
  return kept.length === 1 ? kept[0]!.box : null;
}

/** A box in detector-input pixels brought to an image of `imageSize` pixels, clipped to it. */
export function toImage(box: Box, inputSize: number, imageSize: number): Box {
  const s = imageSize / inputSize;
  const c = (v: number) => Math.min(imageSize, Math.max(0, v * s));
  return [c(box[0]), c(box[1]), c(box[2]), c(box[3])];
}

/**
 * The most confident of several detections in an image of `imageSize` pixels. Equal scores go
 * to the larger box, then to the box whose centre is nearest the image's centre, then to the
 * earlier one. Boxes without area are never chosen; null when none is left.
 */
export function mostConfident(detections: readonly Detection[], imageSize: number): Detection | null {
  const area = (b: Box) => Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const offCentre = (b: Box) => Math.hypot((b[0] + b[2]) / 2 - imageSize / 2, (b[1] + b[3]) / 2 - imageSize / 2);
  let best: Detection | null = null;
  for (const d of detections) {
    if (!(area(d.box) > 0)) continue;
    if (
      !best ||
      d.score > best.score ||
      (d.score === best.score && (area(d.box) > area(best.box) || (area(d.box) === area(best.box) && offCentre(d.box) < offCentre(best.box))))
    )
      best = d;
  }
  return best;
}
