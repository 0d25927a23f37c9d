import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs';
import { Container } from 'inversify';
import type { FerData } from '../contracts/dataset.ts';
import type { PretrainResult } from '../contracts/stages.ts';
import type { PluginRegistry } from '../core/registry.ts';

const DATA = Symbol.for('ssfer.run.data');
const PRETRAININGS = Symbol.for('ssfer.run.pretrainings');
const BASELINES = Symbol.for('ssfer.run.baselines');
const PICTURES = Symbol.for('ssfer.run.pictures');

/** Memos by key: the promise of each value, so cells that ask at once share one computation. */
export type Memo<T> = Map<string, Promise<T>>;

/**
 * What the cells of one run share, in a child container of the registry's: the registry's root
 * container holds the kinds and the plugin definitions (for the process); this one, made per seed
 * of a run (`ssfer run` makes one for each seed's cells; a test that runs cells makes its own),
 * owns the memos, and nothing in them outlives it (each memo's key holds the seed besides):
 *
 * - `data`: each dataset's loaded data, by data key (one decode or draw for every cell that asks);
 * - `pretrainings`: the shared pre-trainings, by pre-training key; their weights are disposed when
 *   one is released and when the run closes (the binding's deactivation);
 * - `baselines`: the accuracy of each cell's linear probe, by its data, labels and settings;
 * - `pictures`: each dataset's picture, by dataset slot and image size (drawn once per run).
 *
 * The cells themselves keep nothing here that is theirs alone: a cell's model, EMA and log live
 * and die in runCell.
 */
export class RunScope {
  readonly container: Container;

  constructor(readonly registry: PluginRegistry) {
    this.container = new Container({ parent: registry.container });
    this.container.bind<Memo<FerData>>(DATA).toConstantValue(new Map());
    this.container.bind<Memo<number>>(BASELINES).toConstantValue(new Map());
    this.container.bind<Memo<Uint8Array | null>>(PICTURES).toConstantValue(new Map());
    this.container
      .bind<Memo<PretrainResult>>(PRETRAININGS)
      .toConstantValue(new Map())
      .onDeactivation((memo) => {
        for (const key of [...memo.keys()]) release(memo, key);
      });
  }

  get data(): Memo<FerData> {
    return this.container.get<Memo<FerData>>(DATA);
  }

  get pictures(): Memo<Uint8Array | null> {
    return this.container.get<Memo<Uint8Array | null>>(PICTURES);
  }

  get baselines(): Memo<number> {
    return this.container.get<Memo<number>>(BASELINES);
  }

  get pretrainings(): Memo<PretrainResult> {
    return this.container.get<Memo<PretrainResult>>(PRETRAININGS);
  }

  /** Forgets a pre-training and disposes its weights (cells run one after another: one that used them has copied them). */
  releasePretraining(key: string): void {
    release(this.pretrainings, key);
  }

  /** Ends the run: every memo is dropped and the pre-trained weights still held are disposed. */
  close(): void {
    this.container.unbindAll();
  }
}

function release(memo: Memo<PretrainResult>, key: string): void {
  const entry = memo.get(key);
  memo.delete(key);
  entry?.then((out) => tf.dispose(Object.values(out.weights ?? {}))).catch(() => {});
}
