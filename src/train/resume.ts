import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { NamedTensors } from '../contracts/backbone.ts';
import type { CheckpointStore, SavedTraining } from '../contracts/stages.ts';
import type { Rng } from '../core/rng.ts';
import { loadTensors, saveTensors, TensorFileError, underPrefix, withPrefix } from './checkpoint.ts';
import type { Ema } from './ema.ts';
import type { AdamW } from './optimizer.ts';

/**
 * Everything a training loop changes as it runs, besides its position: the weights it trains,
 * the optimizer's moments and step, EMA copies and the random stream. Saving these after an
 * epoch and restoring them gives the same next step as if the run had never stopped.
 */
export interface TrainingParts {
  readonly weights?: ReadonlyMap<string, tf.Variable>;
  readonly optimizer?: AdamW | null;
  readonly emas?: Readonly<Record<string, Ema | null>>;
  readonly rng?: Rng;
}

/** The previous epoch's checkpoint, kept beside the last one, to fall back on when the last is damaged. */
export const previousOf = (file: string) => `${file}.prev`;

/**
 * A checkpoint in one tensor file, replaced atomically on every save; the one before is kept as
 * `<file>.prev`. A damaged or truncated checkpoint (checksums) is discarded with a note and the
 * previous one is used, so only the lost epoch is trained again (or the stage starts over when
 * neither can be read): a damaged file never stops every later run.
 */
export function fileCheckpointStore(file: string, note: (text: string) => void = () => {}): CheckpointStore {
  const read = async (f: string): Promise<SavedTraining | null> => {
    if (!fs.existsSync(f)) return null;
    try {
      const { tensors, meta } = await loadTensors(f);
      const { epoch, step, ...rest } = meta as { epoch: number; step: number };
      return { epoch, step, meta: rest, tensors };
    } catch (err) {
      if (!(err instanceof TensorFileError)) throw err;
      note(`ssfer: ${err.message}; discarded, its epochs are trained again`);
      fs.rmSync(f, { force: true });
      return null;
    }
  };
  return {
    load: async () => (await read(file)) ?? read(previousOf(file)),
    async save(s) {
      try {
        fs.renameSync(file, previousOf(file));
      } catch (err) {
        // No checkpoint yet (the first epoch), or another run sharing a stage-cache checkpoint moved it.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await saveTensors(file, s.tensors, { ...s.meta, epoch: s.epoch, step: s.step });
    },
  };
}

/** A checkpoint store that says, through `note`, when a stage continues from it. */
export function announced(store: CheckpointStore, what: string, note: (text: string) => void): CheckpointStore {
  return {
    async load() {
      const saved = await store.load();
      if (saved) note(`ssfer: ${what} continues from its checkpoint after epoch ${saved.epoch} (step ${saved.step})`);
      return saved;
    },
    save: (state) => store.save(state),
  };
}

/** Saves the parts at a loop position; `meta` carries what else the loop needs (JSON). */
export async function saveTraining(
  store: CheckpointStore,
  parts: TrainingParts,
  at: { epoch: number; step: number },
  meta: Record<string, unknown> = {},
): Promise<void> {
  const owned: tf.Tensor[] = [];
  const record: NamedTensors = {};
  if (parts.weights) for (const [name, v] of parts.weights) record[`weights.${name}`] = v;
  if (parts.optimizer) {
    const state = parts.optimizer.state();
    owned.push(...Object.values(state));
    Object.assign(record, withPrefix('optimizer.', state));
  }
  for (const [key, ema] of Object.entries(parts.emas ?? {})) {
    if (!ema) continue;
    const state = ema.state();
    owned.push(...Object.values(state));
    Object.assign(record, withPrefix(`ema.${key}.`, state));
  }
  try {
    await store.save({ ...at, meta: { ...meta, ...(parts.rng ? { rng: parts.rng.getState() } : {}) }, tensors: record });
  } finally {
    tf.dispose(owned);
  }
}

/**
 * Restores the parts from the store's checkpoint and returns the loop position and meta, or
 * null when there is none. A checkpoint that does not fit the parts (another model) is an error
 * naming what differs, so a resume never silently starts over.
 */
export async function restoreTraining(
  store: CheckpointStore,
  parts: TrainingParts,
): Promise<{ epoch: number; step: number; meta: Record<string, unknown> } | null> {
  const saved: SavedTraining | null = await store.load();
  if (!saved) return null;
  try {
    if (parts.weights) {
      const problems: string[] = [];
      for (const [name, v] of parts.weights) {
        const t = saved.tensors[`weights.${name}`];
        if (!t) problems.push(`missing 'weights.${name}'`);
        else if (t.shape.join('x') !== v.shape.join('x')) problems.push(`'weights.${name}' has shape [${t.shape}] but the model [${v.shape}]`);
      }
      if (problems.length) throw new Error(`checkpoint does not fit this model:\n  - ${problems.slice(0, 8).join('\n  - ')}`);
      for (const [name, v] of parts.weights) v.assign(saved.tensors[`weights.${name}`]!);
    }
    if (parts.optimizer) parts.optimizer.loadState(underPrefix('optimizer.', saved.tensors));
    for (const [key, ema] of Object.entries(parts.emas ?? {})) if (ema) ema.loadState(underPrefix(`ema.${key}.`, saved.tensors));
    const { rng, ...meta } = saved.meta as { rng?: { state: number; spare: number | null } };
    if (parts.rng) {
      if (!rng) throw new Error('checkpoint has no random-stream state');
      parts.rng.setState(rng);
    }
    return { epoch: saved.epoch, step: saved.step, meta };
  } finally {
    tf.dispose(Object.values(saved.tensors));
  }
}
