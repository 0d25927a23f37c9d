import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AUTHORS_FALLBACK, FALLBACK_SIZE } from '../../../plugins/face-boxes/internal/detect.ts';
import { boxIou, toImage, type Box } from '../../../plugins/face-boxes/internal/detections.ts';
import { fixtures, projectRoot, tempDir } from '../../helpers.ts';
import { demoFaces, faceCrop } from './demo-faces.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const stem = (split: string, i: number) => `${split}_${String(i + 1).padStart(split === 'train' ? 5 : 4, '0')}`;

/**
 * An aligned RAF-DB folder (EmoLabel/list_patition_label.txt, Image/aligned/*_aligned.jpg at
 * 100×100) of the faces in the face-api demo photos: each clear face as cropped, mirrored, and
 * moved off centre; labels 1–7 in turn.
 */
async function writeAlignedRafdb(dir: string, train: number, test: number): Promise<void> {
  const clear = (await demoFaces()).filter((f) => f.score >= 0.9);
  const variants = [{}, { flip: true }, { shift: [0.06, 0.04] as const }, { flip: true, shift: [-0.05, 0.03] as const }];
  const crops = variants.flatMap((v) => clear.map((face) => ({ face, ...v })));
  expect(crops.length).to.be.at.least(train + test);
  fs.mkdirSync(path.join(dir, 'Image', 'aligned'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'EmoLabel'), { recursive: true });
  const lines: string[] = [];
  let k = 0;
  for (const [split, n] of [
    ['train', train],
    ['test', test],
  ] as const) {
    for (let i = 0; i < n; i++, k++) {
      const { face, ...how } = crops[k]!;
      fs.writeFileSync(path.join(dir, 'Image', 'aligned', `${stem(split, i)}_aligned.jpg`), await faceCrop(face, { margin: 0.1, size: 100, ...how }));
      lines.push(`${stem(split, i)}.jpg ${(k % 7) + 1}`);
    }
  }
  fs.writeFileSync(path.join(dir, 'EmoLabel', 'list_patition_label.txt'), lines.join('\n') + '\n');
}

describe('ssfer run on aligned RAF-DB faces with the default face boxes (end to end)', function () {
  this.timeout(600_000);

  it('detects the faces, so FaceMix’s κ = 1 − IoU varies from pair to pair, and the table names the detector', async () => {
    const raf = path.join(tempDir('ssfer-faces-'), 'RAF-DB');
    await writeAlignedRafdb(raf, 32, 12);
    const out = tempDir('ssfer-faces-out-');
    const r = spawnSync(
      process.execPath,
      [bin, 'run', path.join(fixtures, 'recipes', 'tiny-rafdb-faces.yaml'), '--json', '--out', out, '--set', `data.roots.rafdb=${raf}`],
      {
        cwd: projectRoot,
        encoding: 'utf8',
        timeout: 540_000,
      },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/ssfer: face boxes: detecting faces in 32 images with face-api ssd-mobilenet/);
    const table = JSON.parse(r.stdout) as { notes: string[] };
    const note = table.notes.find((n) => n.startsWith('RAF-DB: face boxes:'));
    expect(note).to.match(
      /^RAF-DB: face boxes: face-api ssd-mobilenet, \d+ of 32 images without a detected face used the central fallback box \(the dataset has no annotated boxes\)$/,
    );
    const fellBack = Number(/, (\d+) of 32/.exec(note!)![1]);
    expect(fellBack).to.be.below(8);

    // Per pair: the boxes the detector kept (by image content) give a spread of κ = 1 − IoU.
    const cacheDir = path.join(out, '.cache', 'data', 'face-boxes');
    const [file] = fs.readdirSync(cacheDir);
    const kept = Object.values((JSON.parse(fs.readFileSync(path.join(cacheDir, file!), 'utf8')) as { boxes: Record<string, Box | null> }).boxes);
    expect(kept).to.have.length(32);
    const boxes = kept.map((b) => b ?? toImage(AUTHORS_FALLBACK, FALLBACK_SIZE, 64));
    const kappas = boxes.flatMap((a, i) => boxes.slice(i + 1).map((b) => 1 - boxIou(a, b)));
    const mean = kappas.reduce((s, v) => s + v, 0) / kappas.length;
    const sd = Math.sqrt(kappas.reduce((s, v) => s + (v - mean) ** 2, 0) / kappas.length);
    expect(mean).to.be.above(0.1);
    expect(sd).to.be.above(0.05);
    expect(kappas.filter((v) => v > 0.01).length / kappas.length).to.be.above(0.8);

    // Per step: the mean κ of each batch's pairs, as training logged it, is never a constant 0.
    const runDir = path.join(out, 'tiny-rafdb-faces', fs.readdirSync(path.join(out, 'tiny-rafdb-faces')).sort().pop()!);
    const [cell] = fs.readdirSync(path.join(runDir, 'cells'));
    const log = fs
      .readFileSync(path.join(runDir, 'cells', cell!, 'seed-0', 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { stage: string; kappa?: number });
    const stepKappas = log.filter((l) => l.stage === 'supervised').map((l) => l.kappa!);
    expect(stepKappas).to.have.length(8);
    expect(Math.min(...stepKappas)).to.be.above(0.02);
    expect(new Set(stepKappas.map((v) => v.toFixed(6))).size).to.be.above(1);
  });
});
