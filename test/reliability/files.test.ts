import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir } from '../helpers.ts';
import { oneCell, ssfer } from './cli.ts';

describe('reliability: every file error names the file', function () {
  this.timeout(300_000);

  let root = '';
  let empty = '';
  let loop = '';
  before(() => {
    root = path.join(tempDir(), 'raf');
    const r = ssfer(['synth', '--out', root, '--dataset', 'synthetic-faces', '--classes', '7', '--train', '56', '--test', '21', '--size', '16']);
    expect(r.status, r.stderr).to.equal(0);
    const images = path.join(root, 'Image', 'aligned');
    empty = path.join(images, 'train_00001_aligned.png');
    fs.writeFileSync(empty, '');
    loop = path.join(images, 'train_00002_aligned.png');
    fs.rmSync(loop);
    fs.symlinkSync(path.basename(loop), loop);
  });

  const run = (onError: string) =>
    ssfer([
      'run',
      oneCell,
      '--backend',
      'cpu',
      '--out',
      tempDir(),
      '--json',
      '--set',
      `data.dataset={use: rafdb, root: ${root}, on_error: ${onError}}`,
      '--set',
      'data.size={train: null, test: null}',
    ]);

  it('stops at a 0-byte image or a symbolic link loop with the file named (on_error: fail)', () => {
    const r = run('fail');
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.match(
      /list_patition_label\.txt:1: image .*train_00001_aligned\.png is empty \(0 bytes\); expected a readable JPEG, PNG or WebP image\. Replace the file with a readable JPEG, PNG or WebP image, or set on_error: skip/,
    );
    expect(r.stderr).to.not.contain('Input Buffer is empty');
  });

  it('leaves both out under on_error: skip and says so', () => {
    const r = run('skip');
    expect(r.status, r.stderr).to.equal(0);
    const table = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const notes = (table.notes as string[]).join('\n');
    expect(notes).to.match(/skipped 2 entries under on_error: skip \(2 unreadable images\); the first: .*is empty \(0 bytes\)/);
    expect(r.stderr).to.not.match(/ELOOP(?!: a symbolic link)/);
  });

  it('names the symbolic link loop on its own', () => {
    fs.copyFileSync(path.join(path.dirname(empty), 'train_00003_aligned.png'), empty);
    const r = run('fail');
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.match(
      /list_patition_label\.txt:2: image .*train_00002_aligned\.png cannot be read \(ELOOP: a symbolic link that leads back to itself\)/,
    );
  });
});
