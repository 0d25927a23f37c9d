/** A labelled contact sheet of images, so a person can check what the generator draws. */
import sharp from 'sharp';

// 5×7 bitmap glyphs; a built-in font keeps the sheet identical on every machine.
const GLYPHS: Record<string, string> = {
  A: '.###.#...##...#######...##...##...#',
  B: '####.#...##...#####.#...##...#####.',
  C: '.###.#...##....#....#....#...#.###.',
  D: '####.#...##...##...##...##...#####.',
  E: '######....#....####.#....#....#####',
  F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.####',
  H: '#...##...##...#######...##...##...#',
  I: '.###...#....#....#....#....#...###.',
  J: '..###...#....#....#....#.#..#..##..',
  K: '#...##..#.#.#..##...#.#..#..#.#...#',
  L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##.#.##...##...##...#',
  N: '#...##...###..##.#.##..###...##...#',
  O: '.###.#...##...##...##...##...#.###.',
  P: '####.#...##...#####.#....#....#....',
  Q: '.###.#...##...##...##.#.##..#..##.#',
  R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.',
  T: '#####..#....#....#....#....#....#..',
  U: '#...##...##...##...##...##...#.###.',
  V: '#...##...##...##...##...#.#.#...#..',
  W: '#...##...##...##.#.##.#.##.#.#.#.#.',
  X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..',
  Z: '#####....#...#...#...#...#....#####',
  '0': '.###.#...##..###.#.###..##...#.###.',
  '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####',
  '3': '####.....#....#.###.....#....#####.',
  '4': '...#...##..#.#.#..#.#####...#....#.',
  '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.',
  '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.',
  '9': '.###.#...##...#.####....#...#..##..',
  '-': '................###................',
  '.': '..........................##...##..',
  ':': '......##...##........##...##.......',
  ' ': '...................................',
};

export interface Sheet {
  readonly width: number;
  readonly height: number;
  /** Interleaved RGB bytes. */
  readonly data: Uint8Array;
}

export interface MontageOptions {
  /** Tiles per row (default 8). */
  readonly cols?: number;
  /** Integer upscaling of each tile (default: enough to make tiles ≥ 96 px). */
  readonly scale?: number;
}

/**
 * Tiles `count` images (NHWC floats in [0, 1], `imageSize` square) with a caption under each.
 * `boxes`, when given, are drawn as thin green frames.
 */
export function renderMontage(
  images: Float32Array,
  imageSize: number,
  count: number,
  captions: readonly string[],
  opts: MontageOptions & { readonly boxes?: Float32Array } = {},
): Sheet {
  const cols = Math.max(1, opts.cols ?? 8);
  const scale = Math.max(1, opts.scale ?? Math.ceil(96 / imageSize));
  const tile = imageSize * scale;
  const capH = 11;
  const pad = 2;
  const rows = Math.ceil(count / cols);
  const width = cols * (tile + pad) + pad;
  const height = rows * (tile + capH + pad) + pad;
  const data = new Uint8Array(width * height * 3).fill(24);
  const px = imageSize * imageSize * 3;
  for (let k = 0; k < count; k++) {
    const ox = pad + (k % cols) * (tile + pad);
    const oy = pad + Math.floor(k / cols) * (tile + capH + pad);
    for (let y = 0; y < tile; y++) {
      for (let x = 0; x < tile; x++) {
        const s = k * px + (Math.floor(y / scale) * imageSize + Math.floor(x / scale)) * 3;
        const d = ((oy + y) * width + ox + x) * 3;
        for (let c = 0; c < 3; c++) data[d + c] = Math.round(Math.max(0, Math.min(1, images[s + c]!)) * 255);
      }
    }
    if (opts.boxes) {
      const b = Array.from(opts.boxes.subarray(k * 4, k * 4 + 4), (v) => Math.round(v * scale));
      const set = (x: number, y: number) => {
        if (x < 0 || y < 0 || x >= tile || y >= tile) return;
        const d = ((oy + y) * width + ox + x) * 3;
        data[d] = 40;
        data[d + 1] = 230;
        data[d + 2] = 60;
      };
      for (let x = b[0]!; x < b[2]!; x++) {
        set(x, b[1]!);
        set(x, b[3]! - 1);
      }
      for (let y = b[1]!; y < b[3]!; y++) {
        set(b[0]!, y);
        set(b[2]! - 1, y);
      }
    }
    drawText(data, width, ox + 1, oy + tile + 2, (captions[k] ?? '').toUpperCase(), Math.floor(tile / 6));
  }
  return { width, height, data };
}

function drawText(data: Uint8Array, width: number, x0: number, y0: number, text: string, maxChars: number): void {
  const shown = text.length > maxChars ? text.slice(0, maxChars) : text;
  for (let i = 0; i < shown.length; i++) {
    const g = GLYPHS[shown[i]!] ?? GLYPHS[' ']!;
    for (let r = 0; r < 7; r++) {
      for (let c = 0; c < 5; c++) {
        if (g[r * 5 + c] !== '#') continue;
        const d = ((y0 + r) * width + x0 + i * 6 + c) * 3;
        data[d] = 240;
        data[d + 1] = 240;
        data[d + 2] = 240;
      }
    }
  }
}

/** The sheet as PNG bytes. */
export async function montagePng(sheet: Sheet): Promise<Uint8Array> {
  const png = await sharp(Buffer.from(sheet.data.buffer, sheet.data.byteOffset, sheet.data.byteLength), {
    raw: { width: sheet.width, height: sheet.height, channels: 3 },
  })
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

export async function writeMontage(path: string, sheet: Sheet): Promise<void> {
  await sharp(Buffer.from(sheet.data.buffer, sheet.data.byteOffset, sheet.data.byteLength), {
    raw: { width: sheet.width, height: sheet.height, channels: 3 },
  })
    .png()
    .toFile(path);
}
