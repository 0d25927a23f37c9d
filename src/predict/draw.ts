import sharp from 'sharp';
import type { Photo } from '../contracts/training.ts';
import type { Box } from './crop.ts';

/** One face to draw: its box and the line written above it. */
export interface Marked {
  readonly box: Box;
  readonly label: string;
}

const COLOURS = ['#22c55e', '#f59e0b', '#3b82f6', '#ef4444', '#a855f7', '#14b8a6', '#ec4899', '#eab308'];

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** An SVG the size of the photo with each face's box and its label on a filled strip above it (below it at the top edge). */
export function overlaySvg(width: number, height: number, faces: readonly Marked[]): string {
  const side = Math.min(width, height);
  const stroke = Math.max(2, Math.round(side / 250));
  const font = Math.max(12, Math.round(side / 40));
  const strip = Math.round(font * 1.35);
  const parts = faces.map((f, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const [x1, y1, x2, y2] = f.box.map((v) => Math.round(v));
    // DejaVu Sans and its like are about 0.6 em wide per character.
    const textWidth = Math.min(width, Math.ceil(f.label.length * font * 0.6) + 2 * stroke + font / 2);
    const above = y1 - strip >= 0;
    const sy = above ? y1 - strip : Math.min(height - strip, y2);
    const sx = Math.max(0, Math.min(x1, width - textWidth));
    return [
      `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      `<rect x="${sx}" y="${sy}" width="${textWidth}" height="${strip}" fill="${colour}"/>`,
      `<text x="${sx + stroke + font / 4}" y="${sy + Math.round(font * 1.05)}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${font}" fill="#000">${escapeXml(f.label)}</text>`,
    ].join('');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** The photo with the faces' boxes and labels drawn on it, encoded as JPEG or PNG. */
export async function drawFaces(photo: Photo, faces: readonly Marked[], format: 'jpeg' | 'png'): Promise<Buffer> {
  const image = sharp(photo.pixels, { raw: { width: photo.width, height: photo.height, channels: 3 } }).composite([
    { input: Buffer.from(overlaySvg(photo.width, photo.height, faces)), top: 0, left: 0 },
  ]);
  return format === 'jpeg' ? image.jpeg({ quality: 90 }).toBuffer() : image.png().toBuffer();
}
