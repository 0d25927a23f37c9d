import type { Box } from '../../../src/data/decode.ts';

/** A whole number written plainly ("7", not "7.0" or "0x7"); NaN otherwise. */
export function wholeNumber(text: string): number {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
}

/** A finite decimal number; NaN for empty or non-numeric text. */
export function decimal(text: string): number {
  return text.trim() === '' ? Number.NaN : Number(text);
}

export const CORNERS_EXPECTED = 'four numbers x1 y1 x2 y2 (pixel corners in the original image) with x2 > x1 and y2 > y1';

/** A box from its corners, or null when they are not four numbers spanning a positive area. */
export function boxFromCorners(fields: readonly string[]): Box | null {
  if (fields.length !== 4) return null;
  const [x1, y1, x2, y2] = fields.map(decimal) as [number, number, number, number];
  if (![x1, y1, x2, y2].every(Number.isFinite) || !(x2 > x1) || !(y2 > y1)) return null;
  return [x1, y1, x2, y2];
}

/** A box from its corner and size, or null when they are not numbers with a positive size. */
export function boxFromSize(x: string, y: string, width: string, height: string): Box | null {
  const [bx, by, w, h] = [x, y, width, height].map(decimal) as [number, number, number, number];
  if (![bx, by, w, h].every(Number.isFinite) || !(w > 0) || !(h > 0)) return null;
  return [bx, by, bx + w, by + h];
}
