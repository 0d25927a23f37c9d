import fs from 'node:fs';
import path from 'node:path';
import { definePlugin } from '../../../src/core/plugin.ts';
import { choice, nullable, options, Type, type Static, type TObject, type TProperties } from '../../../src/core/schema.ts';
import type { DatasetSource, LoadRequest } from '../../../src/contracts/dataset.ts';
import { DatasetError, IssueLog } from '../../../src/data/errors.ts';
import { readIndexFile, type IndexFile } from '../../../src/data/index-file.ts';
import { loadIndexed, type DatasetIndex } from '../../../src/data/load.ts';
import { syntheticStandIn } from '../synthetic-faces.ts';
import { standInSchema, standInSource, type Setting } from './stand-in.ts';

/** The schema of the options every dataset read from disk has (`root` as for a dataset with an environment variable). */
function commonOptions(spec: { readonly env?: string }) {
  const rootHelp = spec.env
    ? `dataset folder (a relative path is relative to the recipe's folder); null reads ${spec.env}, and without it a synthetic stand-in is used`
    : `dataset folder (a relative path is relative to the recipe's folder)`;
  return {
    root: spec.env
      ? nullable(Type.String(), { default: null, description: rootHelp })
      : Type.Unsafe<string | null>({ type: 'string', minLength: 1, description: rootHelp }),
    on_error: choice(['fail', 'skip'], {
      default: 'fail',
      description: 'a malformed line, unknown label, missing or unreadable image: fail names it; skip leaves the entry out and counts it in the notes',
    }),
    stand_in: Type.Optional(standInSchema()),
  };
}

/** The common options after validation (`stand_in` only where the dataset has a stand-in). */
type CommonOptions = Static<TObject<ReturnType<typeof commonOptions>>>;

/** A dataset's options after validation: the common ones and its own. */
export type RealOptions<P extends TProperties> = CommonOptions & Static<TObject<P>>;

/** A dataset read from its official layout. */
export interface RealDatasetSpec<P extends TProperties> {
  readonly name: string;
  readonly displayName: string;
  /**
   * Environment variable that names the folder when `root` is not set. Without one, `root` is
   * required and there is no synthetic stand-in.
   */
  readonly env?: string;
  /** The files it reads, for the description and for messages. */
  readonly layout: string;
  /** One line for `ssfer plugins`; by default it names the official layout. */
  readonly description?: string;
  /** Its own options beside root, on_error and stand_in. */
  readonly options: P;
  setting(options: RealOptions<P>): Setting;
  /** Reads the index files under `root`; per-entry problems go to `issues`. */
  read(root: string, options: RealOptions<P>, issues: IssueLog): DatasetIndex | Promise<DatasetIndex>;
}

/**
 * A plugin for a dataset read from its official layout. With neither `root` nor the environment
 * variable set, a synthetic stand-in with the dataset's classes and split sizes is used instead
 * and every table says so.
 */
export function realDatasetPlugin<P extends TProperties>(spec: RealDatasetSpec<P>) {
  const { stand_in: standInOption, ...common } = commonOptions(spec);
  const schema = options({ ...common, ...(spec.env ? { stand_in: standInOption } : {}), ...spec.options });
  return definePlugin({
    kind: 'dataset',
    name: spec.name,
    description: spec.description ?? `${spec.displayName} from its official layout (${spec.layout}); a synthetic stand-in when not configured locally`,
    options: schema,
    create(given, ctx): DatasetSource {
      const options = given as unknown as RealOptions<P>;
      const setting = spec.setting(options);
      const fromEnv = spec.env ? process.env[spec.env] : undefined;
      const root = options.root ? path.resolve(ctx.recipeDir, options.root) : fromEnv ? path.resolve(fromEnv) : null;
      const standIn = spec.env ? standInSource(spec.name, setting, ctx.seed, options.stand_in ?? {}) : undefined;
      if (!root) {
        if (standIn) return standIn;
        throw new Error(`${spec.name}: set root to the dataset folder (${spec.layout})`);
      }
      // Pre-training pools are drawn, never read from a labelled dataset's folder.
      const drawn = standIn ?? syntheticStandIn(spec.name, setting.display, 7, { seed: ctx.seed });
      return {
        async load(req: LoadRequest) {
          checkFolder(root, spec);
          const issues = new IssueLog(options.on_error);
          const index = await spec.read(root, options, issues);
          return loadIndexed(index, req, { name: spec.name, displayName: setting.display, seed: ctx.seed, issues, dataset: { root, layout: spec.layout } });
        },
        pool: drawn.pool,
        poolKey: drawn.poolKey,
      };
    },
  });
}

function checkFolder(root: string, spec: { readonly displayName: string; readonly layout: string; readonly env?: string }): void {
  if (fs.existsSync(root) && fs.statSync(root).isDirectory()) return;
  const how = spec.env
    ? `Set root (relative to the recipe) or ${spec.env} to that folder, or unset both to use the synthetic stand-in.`
    : 'Set root (relative to the recipe) to that folder.';
  throw new DatasetError({ file: root }, fs.existsSync(root) ? 'not a folder' : 'folder not found', `the ${spec.displayName} folder (${spec.layout})`, how);
}

/** The message for a missing index file: what it is and which folder root should name. */
export function missingIndex(spec: { displayName: string; env?: string }, expected: string): { expected: string; fix: string } {
  return {
    expected,
    fix: `Set root${spec.env ? ` (or ${spec.env})` : ''} to the folder that holds the ${spec.displayName} files as distributed.`,
  };
}

/**
 * The folder one level up or down from `root` that holds `rel` (a file or folder path relative to
 * a dataset's root), for a message when root misses it by one level; null when neither does.
 */
export function nearbyRoot(root: string, rels: readonly string[]): { dir: string; rel: string } | null {
  const up = path.dirname(root);
  let down: string[] = [];
  try {
    down = fs
      .readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => path.join(root, d.name))
      .sort();
  } catch {
    // root is not a readable folder: only up is looked at
  }
  for (const dir of [...(up !== root ? [up] : []), ...down]) for (const rel of rels) if (fs.existsSync(path.join(dir, rel))) return { dir, rel };
  return null;
}

/** The fix for a root that misses `rels` by one level: the folder to point at; null when there is none nearby. */
export function pointAtNearby(root: string, rels: readonly string[], env?: string): string | null {
  const near = nearbyRoot(root, rels);
  return near ? `Found ${near.rel} under ${near.dir}: set root${env ? ` (or ${env})` : ''} to that folder.` : null;
}

/**
 * A dataset's index file: the first of `rels` (paths relative to root, in order of preference)
 * that exists. A missing one names the folder one level up or down that holds it; an empty one
 * is refused at the root, since a dataset read from it would load nothing.
 */
export function readDatasetFile(root: string, rels: readonly string[], spec: { displayName: string; env?: string }, expected: string): IndexFile {
  const rel = rels.find((r) => fs.existsSync(path.join(root, r))) ?? rels[rels.length - 1]!;
  const file = readIndexFile(path.join(root, rel), { expected, fix: pointAtNearby(root, rels, spec.env) ?? missingIndex(spec, expected).fix });
  if (file.text.trim() === '') {
    throw new DatasetError(
      { file: root },
      `${rel} is empty`,
      expected,
      `Restore ${path.basename(rel)} as distributed, or set root to the folder that holds the complete ${spec.displayName} files.`,
    );
  }
  return file;
}
