import { expect } from 'chai';
import { boxIou, decodeOutput, mostConfident, nms, singleFace, toImage, type Box, type Detection } from '../../../plugins/face-boxes/internal/detections.ts';
import { detectorInput } from '../../../plugins/face-boxes/internal/resize.ts';

const det = (box: Box, score: number): Detection => ({ box, score });

describe('face-boxes: detection post-processing', () => {
  it('IoU on continuous corners: hand-computed cases', () => {
    expect(boxIou([0, 0, 10, 10], [5, 5, 15, 15])).to.be.closeTo(25 / 175, 1e-12);
    expect(boxIou([0, 0, 10, 10], [2, 2, 4, 4])).to.be.closeTo(4 / 100, 1e-12);
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).to.equal(1);
    expect(boxIou([0, 0, 10, 10], [10, 0, 20, 10])).to.equal(0); // edges touch
    expect(boxIou([0, 0, 4, 2], [2, 0, 6, 2])).to.be.closeTo(4 / 12, 1e-12);
    expect(boxIou([5, 5, 5, 5], [5, 5, 5, 5])).to.equal(0); // empty union
  });

  it('NMS keeps the best box and drops the ones overlapping it above the threshold', () => {
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([1, 0, 11, 10], 0.8); // IoU with a: 90/110 ≈ 0.818
    const c = det([5, 5, 15, 15], 0.7); // IoU with a: 25/175 ≈ 0.143
    const d = det([30, 30, 40, 40], 0.95);
    expect(nms([b, a, c, d], 0.5)).to.deep.equal([d, a, c]);
    expect(nms([b, a, c, d], 0.85)).to.deep.equal([d, a, b, c]);
    // IoU exactly at the threshold is kept (suppressed only above it): 4/12 = 1/3
    expect(nms([det([0, 0, 4, 2], 0.9), det([2, 0, 6, 2], 0.8)], 1 / 3)).to.have.length(2);
    expect(nms([], 0.5)).to.deep.equal([]);
  });

  it('decodes YOLOv7-face rows [1, N, 6+] (centre, size, objectness·class) and corner rows [N, 5]', () => {
    const yolo = Float32Array.from([50, 40, 20, 10, 0.75, 0.5, 1, 2, 3, 10, 10, 4, 4, 1, 1, 9, 9, 9]);
    expect(decodeOutput(yolo, [1, 2, 9])).to.deep.equal([det([40, 35, 60, 45], 0.375), det([8, 8, 12, 12], 1)]);
    const corners = Float32Array.from([1, 2, 3, 4, 0.5, 5, 6, 7, 8, 0.25]);
    expect(decodeOutput(corners, [2, 5])).to.deep.equal([det([1, 2, 3, 4], 0.5), det([5, 6, 7, 8], 0.25)]);
    expect(decodeOutput(new Float32Array(0), [1, 0, 21])).to.deep.equal([]);
    expect(() => decodeOutput(new Float32Array(8), [2, 4])).to.throw(/output has shape \[2, 4\]; expected \[1, N, 6\+\]/);
  });

  it('one face after the confidence filter and NMS gives its box; none or several give null (the fallback)', () => {
    const face = det([10, 10, 50, 50], 0.9);
    expect(singleFace([face], 0.4, 0.5)).to.deep.equal(face.box);
    expect(singleFace([], 0.4, 0.5)).to.equal(null);
    expect(singleFace([det([10, 10, 50, 50], 0.4)], 0.4, 0.5)).to.equal(null); // the score must exceed the confidence
    expect(singleFace([face, det([100, 100, 140, 140], 0.8)], 0.4, 0.5)).to.equal(null);
    expect(singleFace([det([12, 10, 52, 50], 0.7), face], 0.4, 0.5)).to.deep.equal(face.box);
    expect(singleFace([face, det([100, 100, 140, 140], 0.3)], 0.4, 0.5)).to.deep.equal(face.box);
  });

  it('brings a box from detector pixels to the image, clipped to it', () => {
    expect(toImage([8, 4, 20, 16], 32, 64)).to.deep.equal([16, 8, 40, 32]);
    expect(toImage([25, 25, 220, 220], 224, 112)).to.deep.equal([12.5, 12.5, 110, 110]);
    expect(toImage([-3, 5, 40, 12], 32, 32)).to.deep.equal([0, 5, 32, 12]);
  });

  it('lays the image out CHW, resampling at pixel centres', () => {
    // 2×2 RGB image, pixel (y, x) has channels (10y + x, 100 + 10y + x, 200 + 10y + x).
    const img = Float32Array.from([0, 100, 200, 1, 101, 201, 10, 110, 210, 11, 111, 211]);
    expect(Array.from(detectorInput(img, 0, 2, 2))).to.deep.equal([0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211]);
    // Halving averages each 2×2 block; the second image of the batch is read at its offset.
    const two = Float32Array.from([...new Array(12).fill(0), ...img]);
    expect(Array.from(detectorInput(two, 1, 2, 1))).to.deep.equal([5.5, 105.5, 205.5]);
    // Doubling: output pixel centres fall at −0.25, 0.25, 0.75, 1.25 of the source (edges clamp).
    expect(Array.from(detectorInput(img, 0, 2, 4).subarray(0, 4))).to.deep.equal([0, 0.25, 0.75, 1]);
  });

  it('the most confident face; equal scores: the larger box, then the one nearest the centre, then the first', () => {
    const small = det([10, 10, 30, 30], 0.9);
    const large = det([60, 60, 100, 100], 0.9);
    expect(mostConfident([small, det([0, 0, 50, 50], 0.8), large], 100)).to.equal(large);
    expect(mostConfident([det([0, 0, 50, 50], 0.95), large], 100)!.score).to.equal(0.95);
    // equal score and area: centre distances 35.4 (off) and 7.1 (near) from (50, 50)
    const off = det([0, 0, 30, 30], 0.7);
    const near = det([40, 40, 70, 70], 0.7);
    expect(mostConfident([off, near], 100)).to.equal(near);
    expect(mostConfident([near, off], 100)).to.equal(near);
    // equal in everything: the first
    const twin = det([30, 40, 60, 70], 0.7); // as near as `near`, mirrored
    expect(mostConfident([twin, near], 100)).to.equal(twin);
    // a box without area is never chosen
    expect(mostConfident([det([5, 5, 5, 40], 0.99)], 100)).to.equal(null);
    expect(mostConfident([], 100)).to.equal(null);
  });
});
