import sharp from 'sharp';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A confusion matrix as an SVG heat map: rows = true class, columns = predicted, row-normalised colour. */
export function confusionSvg(matrix: readonly (readonly number[])[], classes: readonly string[], title: string): string {
  const n = classes.length;
  const cell = 56;
  const left = 110;
  const top = 70;
  const w = left + n * cell + 20;
  const h = top + n * cell + 60;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w / 2}" y="22" font-size="14" text-anchor="middle">${esc(title)}</text>`,
    `<text x="${left + (n * cell) / 2}" y="${h - 12}" font-size="12" text-anchor="middle">predicted</text>`,
    `<text x="14" y="${top + (n * cell) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${top + (n * cell) / 2})">true</text>`,
  ];
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((v, j) => {
      const p = v / total;
      const shade = Math.round(255 * (1 - p));
      const fill = `rgb(${shade},${Math.round(255 - 120 * p)},255)`;
      parts.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ccc"/>`);
      parts.push(
        `<text x="${left + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 4}" font-size="11" text-anchor="middle" fill="${p > 0.55 ? 'white' : 'black'}">${v}</text>`,
      );
    });
  });
  classes.forEach((c, i) => {
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${esc(c)}</text>`);
    parts.push(`<text x="${left + i * cell + cell / 2}" y="${top - 8}" font-size="10" text-anchor="middle">${esc(c.slice(0, 8))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Line chart of one or more series against step. */
export function curveSvg(series: Record<string, readonly [number, number][]>, title: string): string {
  const w = 640;
  const h = 360;
  const m = { l: 60, r: 120, t: 36, b: 40 };
  const all = Object.values(series).flat();
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="white"/></svg>`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys) || 1];
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (w - m.l - m.r);
  const sy = (y: number) => h - m.b - ((y - y0) / (y1 - y0 || 1)) * (h - m.t - m.b);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${(w - m.r + m.l) / 2}" y="20" font-size="14" text-anchor="middle">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${h - m.b}" x2="${w - m.r}" y2="${h - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="black"/>`,
    `<text x="${m.l}" y="${h - m.b + 16}" font-size="10" text-anchor="middle">${x0}</text>`,
    `<text x="${w - m.r}" y="${h - m.b + 16}" font-size="10" text-anchor="middle">${x1}</text>`,
    `<text x="${(w - m.r + m.l) / 2}" y="${h - 8}" font-size="11" text-anchor="middle">step</text>`,
    `<text x="${m.l - 6}" y="${sy(y1) + 4}" font-size="10" text-anchor="end">${+y1.toPrecision(3)}</text>`,
    `<text x="${m.l - 6}" y="${sy(y0) + 4}" font-size="10" text-anchor="end">${+y0.toPrecision(3)}</text>`,
  ];
  Object.entries(series).forEach(([name, pts], i) => {
    const c = colors[i % colors.length];
    const d = pts
      .filter((p) => Number.isFinite(p[1]))
      .map((p, k) => `${k ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
      .join('');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    parts.push(`<text x="${w - m.r + 8}" y="${m.t + 14 + i * 16}" font-size="11" fill="${c}">${esc(name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Charts stacked in one picture, each with its own y axis (one per figure a training reports). */
export function chartsSvg(charts: readonly { readonly title: string; readonly series: Record<string, readonly [number, number][]> }[]): string {
  const w = 640;
  const h = 360;
  const inner = charts.map((c, i) => curveSvg(c.series, c.title).replace('<svg ', `<svg y="${i * h}" `));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${Math.max(1, charts.length) * h}"><rect width="100%" height="100%" fill="white"/>${inner.join('')}</svg>`;
}

export async function writePng(svg: string, file: string): Promise<void> {
  await sharp(Buffer.from(svg)).png().toFile(file);
}
