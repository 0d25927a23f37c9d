import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { hashOf } from '../core/json.ts';
import { writeJson } from '../core/files.ts';
import { resolveRecipe, type ResolvedRecipe } from '../recipe/recipe.ts';
import type { CellConfig } from '../recipe/schema.ts';

/** run.json: what the run is and how it ended. */
export interface RunManifest {
  recipe: string;
  title: string;
  file: string;
  scale: string;
  seed: number;
  /** How many seeds each cell runs (absent in runs of versions before seeds: one). */
  seeds: number;
  /** The backend the units trained on ('auto' until the workers of a launcher chose; the table says which). */
  backend: string;
  /** The launcher that trains the units (absent in runs of versions before launchers: inline). */
  launcher?: string;
  started: string;
  finished?: string;
  /** incomplete: the launcher ended with units neither finished nor failed (continue with --resume). */
  status: 'running' | 'interrupted' | 'finished' | 'failed' | 'incomplete';
  /** `ssfer run --detach`: a scheduler trains the units and a job after them ends the run; no process of ssfer run follows it. */
  detached?: boolean;
  config_hash: string;
  cells: string[];
}

/**
 * What a resumed run, a worker and `ssfer collect` must share with the run: every cell's settings.
 * How many seeds it runs is not among them (no training depends on it), nor where it is trained
 * (the launcher): a run started inline may be resumed on a cluster.
 */
export function configHash(recipe: ResolvedRecipe): string {
  const settings = ({ seeds: _seeds, launcher: _launcher, ...rest }: CellConfig) => rest;
  return hashOf(recipe.cells.map((c) => ({ id: c.id, config: settings(c.config) })) as never);
}

export function readManifest(dir: string): RunManifest {
  const file = path.join(dir, 'run.json');
  if (!fs.existsSync(file)) throw new UsageError(`${dir}: no run.json there; name a folder that 'ssfer run' wrote (results/<recipe>/<timestamp>)`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunManifest;
  } catch (err) {
    throw new UsageError(`${file}: cannot be read (${(err as Error).message})`);
  }
}

/** Writes run.json (status running) and the resolved recipe; returns the manifest. */
export function writeManifest(recipe: ResolvedRecipe, dir: string, backend: string, launcher: string): RunManifest {
  const manifest: RunManifest = {
    recipe: recipe.name,
    title: recipe.title,
    file: path.relative(process.cwd(), recipe.file),
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    backend,
    launcher,
    started: new Date().toISOString(),
    status: 'running',
    config_hash: configHash(recipe),
    cells: recipe.cells.map((c) => c.id),
  };
  writeJson(path.join(dir, 'run.json'), manifest);
  const cells = recipe.cells.map((c) => ({ id: c.id, config: c.config }));
  writeJson(path.join(dir, 'recipe.resolved.json'), {
    recipe: recipe.name,
    title: recipe.title,
    description: recipe.description,
    scale: recipe.scale,
    seed: recipe.seed,
    seeds: recipe.seeds,
    reference: recipe.reference ?? null,
    cells,
  });
  return manifest;
}

/** How `ssfer run` was asked to run the recipe (the command line's recipe options), so that a worker or `ssfer collect` resolves the same recipe. */
export interface RecipeInvocation {
  readonly scale?: string;
  readonly sets: readonly string[];
  readonly seeds?: string;
  readonly pluginFiles: readonly string[];
}

export const LAUNCH_FILE = 'launch.json';

/**
 * launch.json: what workers and `ssfer collect` need to take part in the run — the recipe as it
 * was resolved (file, scale, --set, --seeds, --plugin; user info taken out of URIs, which reach
 * workers through the environment), where results and caches live, the backend asked for, this
 * launch's id (each `ssfer run` and `--resume` is a new launch, with its own retry budget), the
 * launcher and its retries, and what the tracker hands its workers.
 */
export interface Launch {
  readonly version: 1;
  readonly launch: string;
  readonly recipe: string;
  readonly cwd: string;
  readonly invocation: RecipeInvocation;
  readonly out_root: string;
  readonly backend: string | null;
  readonly launcher: string;
  readonly max_retries: number;
  readonly tracker: unknown;
  /** The command line that continues the run (`ssfer run …`, without --resume). */
  readonly resume_with: readonly string[];
}

/** User info (`scheme://user:password@`) in a command-line value. */
const USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#@\s'"]*@/g;

export function writeLaunch(dir: string, launch: Omit<Launch, 'version'>): Launch {
  const clean: Launch = {
    version: 1,
    ...launch,
    invocation: { ...launch.invocation, sets: launch.invocation.sets.map((s) => s.replace(USERINFO, '$1')) },
    resume_with: launch.resume_with.map((s) => s.replace(USERINFO, '$1')),
  };
  writeJson(path.join(dir, LAUNCH_FILE), clean);
  return clean;
}

export function readLaunch(dir: string): Launch | null {
  const file = path.join(dir, LAUNCH_FILE);
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Launch;
  } catch (err) {
    throw new UsageError(`${file}: cannot be read (${(err as Error).message})`);
  }
}

/**
 * The recipe of a run, resolved as `ssfer run` resolved it (from its folder's launch.json), and
 * checked against run.json: a recipe file changed since the run is refused, since its cells
 * would not be the run's.
 */
export async function resolveRun(dir: string): Promise<{ recipe: ResolvedRecipe; manifest: RunManifest; launch: Launch }> {
  const manifest = readManifest(dir);
  const launch = readLaunch(dir);
  if (!launch) {
    throw new UsageError(
      `${dir}: no ${LAUNCH_FILE} there (a run of a version before launchers): continue it with 'ssfer run ${manifest.file} --resume ${dir}', which writes one`,
    );
  }
  const before = process.cwd();
  let recipe: ResolvedRecipe;
  try {
    process.chdir(launch.cwd);
    recipe = await resolveRecipe(launch.recipe, { ...launch.invocation, sets: [...launch.invocation.sets] });
  } finally {
    process.chdir(before);
  }
  if (configHash(recipe) !== manifest.config_hash) {
    throw new UsageError(
      `${dir}: ${launch.recipe} (with the run's scale and --set) no longer gives the cells this run trained: the recipe or a file it extends changed since; restore it, or start a new run`,
    );
  }
  return { recipe, manifest, launch };
}
