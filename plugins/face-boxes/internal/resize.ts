/**
 * One image of an NHWC [0, 1] batch as a detector input: bilinearly resized to `size` (sampling at
 * pixel centres, as OpenCV's INTER_LINEAR) and laid out CHW, RGB. Returns [3·size·size].
 */
export function detectorInput(images: Float32Array, index: number, imageSize: number, size: number): Float32Array {
  const out = new Float32Array(3 * size * size);
  const base = index * imageSize * imageSize * 3;
  const scale = imageSize / size;
  const taps = Array.from({ length: size }, (_, o) => {
    const src = Math.min(imageSize - 1, Math.max(0, (o + 0.5) * scale - 0.5));
    const lo = Math.floor(src);
    return { lo, hi: Math.min(lo + 1, imageSize - 1), t: src - lo };
  });
  const plane = size * size;
  for (let y = 0; y < size; y++) {
    const ty = taps[y]!;
    for (let x = 0; x < size; x++) {
      const tx = taps[x]!;
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => images[base + (yy * imageSize + xx) * 3 + c]!;
        const top = at(ty.lo, tx.lo) * (1 - tx.t) + at(ty.lo, tx.hi) * tx.t;
        const bottom = at(ty.hi, tx.lo) * (1 - tx.t) + at(ty.hi, tx.hi) * tx.t;
        out[c * plane + y * size + x] = top * (1 - ty.t) + bottom * ty.t;
      }
    }
  }
  return out;
}
