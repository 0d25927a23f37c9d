import type { Split } from '../../../src/contracts/dataset.ts';

/** The images of a split without an annotated box (their box is the whole image). */
export function withoutAnnotation(split: Split): Int32Array {
  const marks = split.annotatedBoxes;
  if (!marks) return Int32Array.from({ length: split.size }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i < split.size; i++) if (!marks[i]) out.push(i);
  return Int32Array.from(out);
}

/** What the split's own boxes are, for the notes. */
export function annotationNote(split: Split): string {
  const missing = withoutAnnotation(split).length;
  if (missing === 0) return "face boxes: the dataset's annotated boxes";
  if (missing === split.size) return 'face boxes: annotations, but the dataset has none: every box is the whole image';
  return `face boxes: annotated for ${split.size - missing} of ${split.size} images, the whole image for the other ${missing}`;
}
