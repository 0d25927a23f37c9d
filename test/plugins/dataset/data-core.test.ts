// The shared loading code in src/data: CSV fields, subsets, decoding, the cache file, issues.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Rng } from '../../../src/core/rng.ts';
import { readEntry, writeEntry } from '../../../src/data/cache.ts';
import { decodeSquare, scaleBox } from '../../../src/data/decode.ts';
import { IssueLog } from '../../../src/data/errors.ts';
import { splitCsv } from '../../../src/data/index-file.ts';
import { stratifiedSubset } from '../../../src/data/subset.ts';
import { tempDir } from '../../helpers.ts';
import { counts } from './disk-fixtures.ts';

describe('data: shared loading code', () => {
  it('splits CSV records with quoted fields and reports an open quote', () => {
    expect(splitCsv('a,b,c')).to.deep.equal(['a', 'b', 'c']);
    expect(splitCsv('a,,c,')).to.deep.equal(['a', '', 'c', '']);
    expect(splitCsv('"x, y",2,"say ""hi"""')).to.deep.equal(['x, y', '2', 'say "hi"']);
    expect(splitCsv('"open,2')).to.equal(null);
    expect(splitCsv('"a"b,2')).to.equal(null);
    expect(splitCsv('a\tb', '\t')).to.deep.equal(['a', 'b']);
  });

  it('keeps each class’s share in a stratified subset, the same for the same seed', () => {
    const labels = Int32Array.from({ length: 100 }, (_, i) => (i < 50 ? 0 : i < 80 ? 1 : 2));
    const a = stratifiedSubset(labels, 3, 10, new Rng(1));
    expect(
      counts(
        Int32Array.from(a, (i) => labels[i]!),
        3,
      ),
    ).to.deep.equal([5, 3, 2]);
    expect([...a]).to.deep.equal([...stratifiedSubset(labels, 3, 10, new Rng(1))]);
    expect([...a]).to.not.deep.equal([...stratifiedSubset(labels, 3, 10, new Rng(2))]);
    expect([...a]).to.deep.equal([...a].sort((x, y) => x - y));
    // 7 of 50/30/20: exact shares 3.5, 2.1, 1.4 → 3 + 2 + 1 and the leftover to the largest fraction
    expect(
      counts(
        Int32Array.from(stratifiedSubset(labels, 3, 7, new Rng(3)), (i) => labels[i]!),
        3,
      ),
    ).to.deep.equal([4, 2, 1]);
    expect(stratifiedSubset(labels, 3, null, new Rng(1)).length).to.equal(100);
    expect(stratifiedSubset(labels, 3, 500, new Rng(1)).length).to.equal(100);
  });

  it('decodes grey pixels to equal RGB channels and scales a box into the square', async () => {
    const grey = new Uint8Array(6 * 3).fill(200);
    const out = new Uint8Array(4 * 4 * 3);
    const size = await decodeSquare({ width: 6, height: 3, channels: 1, pixels: () => grey }, 4, out);
    expect(size).to.deep.equal({ width: 6, height: 3 });
    expect(new Set(out)).to.deep.equal(new Set([200]));
    expect(scaleBox([3, 0, 9, 3], { width: 6, height: 3 }, 4)).to.deep.equal([2, 0, 4, 4]); // clamped to the image
    expect(scaleBox(null, { width: 6, height: 3 }, 4)).to.deep.equal([0, 0, 4, 4]);
  });

  it('reads back a cache entry, and tells a missing, foreign, truncated or damaged one', () => {
    const dir = tempDir('ssfer-entry-');
    const file = path.join(dir, 'e.bin');
    const arrays = { pixels: Uint8Array.from([1, 2, 3]), labels: Int32Array.from([7, -1]), boxes: Float32Array.from([0.5, 1.5]) };
    expect(readEntry(file, 'k')).to.deep.equal({ miss: 'no entry' });
    writeEntry(file, 'k', arrays, { note: 'x' });
    const back = readEntry(file, 'k');
    if (!('arrays' in back)) throw new Error(back.miss);
    expect(back.meta).to.deep.equal({ note: 'x' });
    expect(back.arrays.pixels).to.deep.equal(arrays.pixels);
    expect(back.arrays.labels).to.deep.equal(arrays.labels);
    expect(back.arrays.boxes).to.deep.equal(arrays.boxes);
    expect(readEntry(file, 'other')).to.deep.equal({ miss: 'written for other inputs' });
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 4));
    expect(readEntry(file, 'k')).to.deep.equal({ miss: 'checksum mismatch (truncated or damaged)' });
    fs.writeFileSync(file, bytes.subarray(0, 20));
    expect(readEntry(file, 'k')).to.deep.equal({ miss: 'header runs past the end (truncated)' });
    expect(fs.readdirSync(dir)).to.deep.equal(['e.bin']);
  });

  it('fails at the first problem under fail, and counts them under skip', () => {
    const fail = new IssueLog('fail');
    expect(() => fail.report('label', { file: 'list.txt', line: 4 }, "label '9'", '1–7')).to.throw(
      "list.txt:4: label '9'; expected 1–7. Correct the label, or set on_error: skip to leave such entries out.",
    );
    const skip = new IssueLog('skip');
    expect(skip.notes()).to.deep.equal([]);
    skip.report('label', { file: 'list.txt', line: 4 }, "label '9'", '1–7');
    skip.report('missing', { file: 'a.jpg' }, 'image a.jpg not found', 'a file');
    skip.absorb({ counts: { label: 2 } });
    expect(skip.skipped).to.equal(4);
    expect(skip.notes()).to.deep.equal([`skipped 4 entries under on_error: skip (3 unknown labels, 1 missing image); the first: list.txt:4: label '9'`]);
  });
});
