import fs from 'node:fs';
import path from 'node:path';
import type { BackboneFactory } from '../contracts/backbone.ts';
import type { Metrics, PretrainResult } from '../contracts/stages.ts';
import { writeAtomic } from '../core/files.ts';
import { deriveSeed } from '../core/rng.ts';
import { loadTensors, saveTensors, TensorFileError } from '../train/checkpoint.ts';
import { announced, fileCheckpointStore, previousOf } from '../train/resume.ts';
import { Interrupted, pluginContext, type CellContext, type CellHooks } from './cell-context.ts';
import { acquireLease, describeHolder, heldElsewhere, isLease, leaseState } from '../core/lease.ts';
import type { PluginRegistry } from '../core/registry.ts';
import type { ResolvedCell, ResolvedRecipe } from '../recipe/recipe.ts';
import { datasetSlot } from './cell-data.ts';
import { cellStageKeys } from './stage-keys.ts';

/** A pre-training's entry in the stage cache folder: `<entry>.weights`, `.png`, `.lock`, `.ckpt`. */
function cacheEntry(stageCacheDir: string, key: string): string {
  return path.join(stageCacheDir, `pretrain-${key}`);
}

/** The stage cache entry of a cell's pre-training. */
export function pretrainingEntry(registry: PluginRegistry, recipe: ResolvedRecipe, cell: ResolvedCell, stageCacheDir: string): string {
  return cacheEntry(stageCacheDir, cellStageKeys(registry, cell.config, pluginContext(recipe, cell)).pretrain);
}

/** Whether a pre-training's cache entry is written (the weights file comes last). */
export function pretrainingCached(entry: string): boolean {
  return fs.existsSync(`${entry}.weights`);
}

/** Whether another live process holds the lease of a pre-training's cache entry: it computes it now. */
export function pretrainingHeldElsewhere(entry: string): boolean {
  return heldElsewhere(leaseState(`${entry}.lock`));
}

/**
 * The cell's pre-training. Cells with the same pre-training key share one: it runs once per run
 * (the run scope keeps it) and, with a stage cache folder, once across runs (kept on disk). The
 * caller copies the weights; it does not dispose them.
 */
export async function sharedPretraining(c: CellContext, backbone: BackboneFactory): Promise<PretrainResult> {
  const { hooks, scope } = c;
  const key = cellStageKeys(scope.registry, c.config, c.plugins).pretrain;
  const memo = scope.pretrainings;
  let shared = memo.get(key);
  if (!shared) {
    const slot = datasetSlot(c.config);
    const run = () =>
      c.create('pretrain', c.config.pipeline.pretrain).run(
        { backbone, pool: (kind, n) => c.create('dataset', slot).pool(kind, n, backbone.imageSize), seed: deriveSeed(c.seed, 'pretrain') },
        {
          stage: 'pre-training',
          onStep: (l, plan) => hooks.onStep('pretrain', l, plan),
          shouldStop: hooks.shouldStop,
          // Pre-training is shared across cells and runs, so its checkpoint lives beside its cache entry.
          ...(hooks.stageCacheDir
            ? { checkpoint: announced(fileCheckpointStore(`${cacheEntry(hooks.stageCacheDir, key)}.ckpt`, hooks.note), 'pre-training', hooks.note) }
            : {}),
        },
      );
    shared = hooks.stageCacheDir ? cachedPretraining(cacheEntry(hooks.stageCacheDir, key), run, hooks) : run();
    // With the on-disk cache, memory holds one pre-training at a time (another one is read back
    // from disk when a later cell needs it), so a table of many pre-trainings stays flat.
    if (hooks.stageCacheDir) for (const other of [...memo.keys()]) scope.releasePretraining(other);
    memo.set(key, shared);
    shared.catch(() => memo.delete(key));
  }
  const pretrained = await shared;
  if (pretrained.stopped) {
    memo.delete(key);
    throw new Interrupted();
  }
  return pretrained;
}

/** How often a process waiting for another's pre-training looks whether it is done (ms). */
const WAIT_POLL_MS = 1000;

/**
 * A pre-training from the on-disk stage cache, or run and stored there. Entries are written
 * atomically (weights file last), so a crash never leaves an entry that looks complete. Processes
 * that share the cache (a launcher's workers, on one machine or the nodes of a cluster) compute an
 * entry once: the one that takes the lease beside it (`<entry>.lock`: host, pid, heartbeat) trains,
 * the others wait for the entry and read it; a lease whose holder died (kill -9) is taken over and
 * its pre-training continues from its checkpoint.
 */
async function cachedPretraining(base: string, run: () => Promise<PretrainResult>, hooks: Pick<CellHooks, 'note' | 'shouldStop'>): Promise<PretrainResult> {
  const { note } = hooks;
  const weightsFile = `${base}.weights`;
  let waited = false;
  for (;;) {
    const cached = await readCached(base, note);
    if (cached) return cached;
    const lease = acquireLease(`${base}.lock`, { stage: 'pretrain' }, { note });
    if (isLease(lease)) {
      try {
        // Another process may have finished it between our look and our lease.
        const meanwhile = await readCached(base, note);
        if (meanwhile) return meanwhile;
        const out = await run();
        if (out.weights && !out.stopped) {
          if (out.picture) writeAtomic(`${base}.png`, Buffer.from(out.picture));
          await saveTensors(weightsFile, out.weights, {
            summary: out.summary,
            ...(out.health ? { health: out.health } : {}),
            ...(out.notes ? { notes: out.notes } : {}),
          });
          fs.rmSync(`${base}.ckpt`, { force: true });
          fs.rmSync(previousOf(`${base}.ckpt`), { force: true });
        }
        return out;
      } finally {
        lease.release();
      }
    }
    if (!waited) {
      waited = true;
      note(`ssfer: waiting for the pre-training ${path.basename(base)} that ${describeHolder(lease.held.holder)} computes (stage cache)`);
    }
    if (hooks.shouldStop()) return { weights: null, summary: 'pre-training (stopped while waiting)', stopped: true };
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

/** The cache entry, or null when there is none (a damaged one is removed). */
async function readCached(base: string, note: (t: string) => void): Promise<PretrainResult | null> {
  const weightsFile = `${base}.weights`;
  const loaded = pretrainingCached(base) ? await loadTensors(weightsFile).catch((err: unknown) => discardDamaged(err, weightsFile, note)) : null;
  if (!loaded) return null;
  const picture = fs.existsSync(`${base}.png`) ? new Uint8Array(fs.readFileSync(`${base}.png`)) : undefined;
  note(`ssfer: pre-training reused from the stage cache (${path.basename(base)})`);
  const { health, notes } = loaded.meta as { health?: Metrics; notes?: string[] };
  return {
    weights: loaded.tensors,
    summary: `${String(loaded.meta.summary ?? 'pre-training')} (from the stage cache)`,
    ...(picture ? { picture } : {}),
    ...(health ? { health } : {}),
    ...(notes ? { notes } : {}),
  };
}

/** A damaged cache entry (checksums, truncation) is removed and recomputed, with a note; other errors stand. */
function discardDamaged(err: unknown, file: string, note: (t: string) => void): null {
  if (!(err instanceof TensorFileError)) throw err;
  note(`ssfer: stage cache entry ${path.basename(file)} is damaged (${err.reason}); removed, the pre-training is computed again`);
  fs.rmSync(file, { force: true });
  return null;
}
