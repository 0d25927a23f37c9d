import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A lease: an exclusive claim on a piece of work that several processes (on one machine or on the
 * nodes of a cluster, through a shared folder) may want, kept as a small file beside the work.
 * The file holds who holds it (pid, host, when it started, anything else the holder says) and its
 * time of change is the holder's heartbeat, renewed while it lives. A lease is stale — and is taken
 * over — when its holder is a process of this host that no longer runs, or when its heartbeat is
 * older than the stale timeout (a holder on another host, or a pid reused since), so a holder
 * killed with kill -9 never blocks the others for longer than that.
 */
export interface LeaseHolder {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
  /** Tells this holder's lease from another's with the same pid and host. */
  readonly token: string;
  readonly [about: string]: unknown;
}

export interface LeaseState {
  readonly holder: LeaseHolder | null;
  /** Milliseconds since the last heartbeat. */
  readonly age: number;
  readonly live: boolean;
  /** Why it is not live: 'dead' (its process is gone), 'silent' (no heartbeat for the timeout), 'unreadable'. */
  readonly why: 'dead' | 'silent' | 'unreadable' | null;
}

export interface Lease {
  readonly file: string;
  readonly holder: LeaseHolder;
  /** True once another process took the lease over (this one was silent for the timeout). */
  lost(): boolean;
  release(): void;
}

export interface LeaseOptions {
  /** A lease whose heartbeat is older than this is stale (default: SSFER_LEASE_STALE_SECONDS, else 600 s). */
  readonly staleMs?: number;
  /** How often the holder renews its heartbeat (default: a twentieth of the stale timeout, at most 15 s). */
  readonly heartbeatMs?: number;
  /** Said when a stale lease is taken over. */
  readonly note?: (text: string) => void;
}

/** The stale timeout: SSFER_LEASE_STALE_SECONDS, else 10 minutes (longer than any step or save between two heartbeats). */
export function staleTimeoutMs(): number {
  const s = Number(process.env.SSFER_LEASE_STALE_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 600_000;
}

/**
 * Whether a process of this host is alive (a process we may not signal is alive too). A zombie is
 * not: a killed worker whose parent died too is re-parented to PID 1, and where PID 1 never reaps
 * (a container started as `sleep infinity` and driven by `docker exec`) it stays a zombie, which
 * signal 0 still reaches.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !zombie(pid);
}

/** Whether /proc says the process has ended but is not yet reaped (state Z or X); false where /proc cannot say. */
function zombie(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // pid (comm) state …: comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

/** Whether a lease is live and held by another process than this one. */
export function heldElsewhere(state: LeaseState | null): boolean {
  return state !== null && state.live && !(state.holder?.pid === process.pid && state.holder.host === os.hostname());
}

/** Where a lease stands (null: there is none). */
export function leaseState(file: string, opts: { staleMs?: number; now?: number } = {}): LeaseState | null {
  let text: string;
  let mtime: number;
  try {
    mtime = fs.statSync(file).mtimeMs;
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const age = Math.max(0, (opts.now ?? Date.now()) - mtime);
  const staleMs = opts.staleMs ?? staleTimeoutMs();
  let holder: LeaseHolder | null = null;
  try {
    holder = JSON.parse(text) as LeaseHolder;
  } catch {
    // written whole (see acquireLease), so only a damaged file is unreadable
  }
  if (!holder || typeof holder.pid !== 'number') return { holder: null, age, live: age < staleMs, why: age < staleMs ? null : 'unreadable' };
  if (holder.host === os.hostname() && holder.pid !== process.pid && !processAlive(holder.pid)) return { holder, age, live: false, why: 'dead' };
  if (age >= staleMs) return { holder, age, live: false, why: 'silent' };
  return { holder, age, live: true, why: null };
}

/** `pid 123 on host, since …` */
export function describeHolder(h: LeaseHolder | null): string {
  return h ? `pid ${h.pid} on ${h.host}, since ${h.started}` : 'an unknown process';
}

/**
 * Takes the lease in `file`, or says who holds it. The file is written whole under a temporary
 * name and linked into place (link fails when the lease exists), so nobody reads a half-written
 * lease. A stale lease is moved aside under a name of this process and checked to be the one
 * found stale (two processes taking over at once: one of them moves it) before it is removed.
 */
export function acquireLease(file: string, about: Record<string, unknown> = {}, opts: LeaseOptions = {}): Lease | { held: LeaseState } {
  const staleMs = opts.staleMs ?? staleTimeoutMs();
  const holder: LeaseHolder = {
    ...about,
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${file}.${process.pid}.${holder.token}.new`;
    fs.writeFileSync(tmp, `${JSON.stringify(holder)}\n`);
    try {
      fs.linkSync(tmp, file);
      return holdLease(file, holder, opts.heartbeatMs ?? Math.min(15_000, staleMs / 20));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    const state = leaseState(file, { staleMs });
    if (!state) continue; // released meanwhile
    if (state.live) return { held: state };
    const aside = `${file}.${process.pid}.${holder.token}.stale`;
    try {
      fs.renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another process took it over first
      throw err;
    }
    let moved: LeaseHolder | null = null;
    try {
      moved = JSON.parse(fs.readFileSync(aside, 'utf8')) as LeaseHolder;
    } catch {
      // unreadable: it was the stale one
    }
    if (moved && state.holder && moved.token !== state.holder.token) {
      // Another process took the stale lease over between our look and our move: give its lease back.
      try {
        fs.linkSync(aside, file);
      } catch {
        // a third process holds it now; either way it is not ours
      }
      fs.rmSync(aside, { force: true });
      return { held: leaseState(file, { staleMs }) ?? { holder: moved, age: 0, live: true, why: null } };
    }
    fs.rmSync(aside, { force: true });
    opts.note?.(
      `ssfer: ${file}: taking over from ${describeHolder(state.holder)} (${state.why === 'dead' ? 'that process no longer runs' : `no heartbeat for ${Math.round(state.age / 1000)} s`})`,
    );
  }
  const state = leaseState(file, { staleMs });
  return { held: state ?? { holder: null, age: 0, live: true, why: null } };
}

function holdLease(file: string, holder: LeaseHolder, heartbeatMs: number): Lease {
  let lost = false;
  let released = false;
  const beat = () => {
    if (released || lost) return;
    try {
      const now = JSON.parse(fs.readFileSync(file, 'utf8')) as LeaseHolder;
      if (now.token !== holder.token) {
        lost = true;
        return;
      }
      const t = new Date();
      fs.utimesSync(file, t, t);
    } catch {
      lost = true;
    }
  };
  const timer = setInterval(beat, Math.max(10, heartbeatMs));
  timer.unref();
  return {
    file,
    holder,
    lost: () => {
      beat();
      return lost;
    },
    release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      try {
        const now = JSON.parse(fs.readFileSync(file, 'utf8')) as LeaseHolder;
        if (now.token === holder.token) fs.rmSync(file, { force: true });
      } catch {
        // gone already
      }
    },
  };
}

/** The result of acquireLease was the lease. */
export function isLease(x: Lease | { held: LeaseState }): x is Lease {
  return (x as Lease).release !== undefined;
}
