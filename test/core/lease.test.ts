import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { acquireLease, isLease, leaseState, processAlive } from '../../src/core/lease.ts';
import { tempDir } from '../helpers.ts';

/** A pid that no process has any more: a child that ran and ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const write = (file: string, holder: Record<string, unknown>, ageMs = 0) => {
  fs.writeFileSync(file, JSON.stringify({ started: '2026-01-01T00:00:00.000Z', token: 'theirs', ...holder }));
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
};

describe('leases: exclusive claims that survive kill -9', () => {
  it('is taken by one holder; the next is told who holds it; released, it can be taken again', () => {
    const file = path.join(tempDir(), 'sub', 'x.lock');
    const a = acquireLease(file, { worker: 'w1' });
    expect(isLease(a)).to.equal(true);
    const held = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(held).to.include({ pid: process.pid, worker: 'w1' });
    const b = acquireLease(file);
    expect(isLease(b)).to.equal(false);
    if (!isLease(b)) expect(b.held.holder?.token).to.equal(held.token);
    if (isLease(a)) a.release();
    expect(fs.existsSync(file)).to.equal(false);
    const c = acquireLease(file);
    expect(isLease(c)).to.equal(true);
    if (isLease(c)) c.release();
    expect(fs.readdirSync(path.dirname(file)), 'no temporary files left').to.deep.equal([]);
  });

  it('takes over the lease of a process of this host that no longer runs (kill -9), at once, and says so', () => {
    const file = path.join(tempDir(), 'x.lock');
    const pid = deadPid();
    write(file, { pid, host: os.hostname() });
    expect(leaseState(file)).to.include({ live: false, why: 'dead' });
    const notes: string[] = [];
    const l = acquireLease(file, {}, { note: (t) => notes.push(t) });
    expect(isLease(l)).to.equal(true);
    expect(notes.join('\n')).to.contain(`pid ${pid}`).and.contain('no longer runs');
    if (isLease(l)) l.release();
  });

  it('takes over the lease of a zombie (killed, its parent gone, under a PID 1 that never reaps): signal 0 reaches it, /proc says it ended', async () => {
    // A shell starts `sleep 0` in the background, then becomes `sleep 30`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
      const deadline = Date.now() + 10_000;
      while (!/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(() => process.kill(pid, 0), 'signal 0 reaches a zombie').not.to.throw();
      expect(processAlive(pid)).to.equal(false);
      const file = path.join(tempDir(), 'x.lock');
      write(file, { pid, host: os.hostname() });
      expect(leaseState(file)).to.include({ live: false, why: 'dead' });
    } finally {
      parent.kill('SIGKILL');
    }
    expect(processAlive(process.pid)).to.equal(true);
  });

  it('waits for a live holder on another host, and takes over once its heartbeat is older than the stale timeout', () => {
    const file = path.join(tempDir(), 'x.lock');
    write(file, { pid: 1, host: 'another-node' }, 5_000);
    const fresh = acquireLease(file, {}, { staleMs: 60_000 });
    expect(isLease(fresh), 'a heartbeat 5 s old is live').to.equal(false);
    const notes: string[] = [];
    const stale = acquireLease(file, {}, { staleMs: 2_000, note: (t) => notes.push(t) });
    expect(isLease(stale)).to.equal(true);
    expect(notes.join('\n')).to.contain('another-node').and.contain('no heartbeat for 5 s');
    if (isLease(stale)) stale.release();
  });

  it('renews its heartbeat while held, and knows when another process took it over', async () => {
    const file = path.join(tempDir(), 'x.lock');
    const l = acquireLease(file, {}, { heartbeatMs: 20, staleMs: 60_000 });
    expect(isLease(l)).to.equal(true);
    if (!isLease(l)) return;
    const old = new Date(Date.now() - 30_000);
    fs.utimesSync(file, old, old);
    await new Promise((r) => setTimeout(r, 120));
    expect(Date.now() - fs.statSync(file).mtimeMs).to.be.below(5_000);
    expect(l.lost()).to.equal(false);
    write(file, { pid: 1, host: 'another-node', token: 'other' });
    expect(l.lost()).to.equal(true);
    l.release();
    expect(fs.existsSync(file), 'a lost lease is not removed: it is the other holder’s').to.equal(true);
  });
});
