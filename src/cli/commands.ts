import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Json } from '../core/json.ts';
import { createRegistry } from '../core/registry.ts';
import { importFailure, importPluginFile } from '../core/plugin-import.ts';
import { writeAtomic } from '../core/files.ts';
import { pluginTemplate, renderTemplate, TEMPLATE_KINDS } from './scaffold.ts';
import { CORE_KINDS } from '../core/kinds.ts';
import type { JsonSchema } from '../core/plugin.ts';
import { resolveConfig, resolveRecipe, seedOf, type Override, type ResolvedRecipe } from '../recipe/recipe.ts';
import { checkpointIntervalMs } from '../train/loop.ts';
import { coreSchema, type CellConfig } from '../recipe/schema.ts';
import { RecipeError } from '../recipe/diagnostics.ts';
import { cellStageKeys, STAGES } from '../pipeline/stage-keys.ts';
import { UsageError } from '../core/errors.ts';
import { parse } from './args.ts';

export interface Command {
  readonly summary: string;
  readonly help: string;
  run(argv: string[]): Promise<number>;
}

const recipeFlags = {
  scale: { type: 'string' },
  set: { type: 'string', multiple: true },
  seeds: { type: 'string' },
  plugin: { type: 'string', multiple: true },
} as const;

const recipeFlagHelp = `  --scale smoke|small|paper  which entry of the recipe's scales applies (default: the recipe's scale:)
  --set path=value           override a recipe value (repeatable; the value is read as YAML and validated;
                             grid.… changes the grid, without the paper's numbers unless reference.…
                             is set too; a value a grid axis sets is refused)
  --seeds N                  every cell runs N seeds, seed k being the recipe's seed + k (over the
                             recipe's seeds: and --set seeds=N; default 1)
  --plugin FILE              load extra plugins from a file (.ts, .mts, .js, .mjs; relative to the current
                             folder) or an installed package, by its name (repeatable)`;

function recipeOptions(values: { scale?: string; set?: string[]; seeds?: string; plugin?: string[] }) {
  return { scale: values.scale, sets: values.set ?? [], ...(values.seeds !== undefined ? { seeds: values.seeds } : {}), pluginFiles: values.plugin ?? [] };
}

function helpOr(values: { help?: boolean }, command: string): boolean {
  if (values.help) process.stdout.write(commands[command]!.help);
  return Boolean(values.help);
}

/** Which plugins a cell uses, as `path → name`, for plans and tables. */
export function pluginsOf(recipe: ResolvedRecipe['cells'][number]): Record<string, string> {
  return Object.fromEntries(recipe.slots.map((s) => [s.path, s.use]));
}

/**
 * Plugin choices as text, each slot with the slots nested in it, whatever the kinds:
 * `pipeline.supervised supervised(mixing facemix(kappa iou, loss L4), augment weak)`.
 */
export function slotTree(choices: readonly (readonly [string, string])[]): string[] {
  const paths = new Set(choices.map(([p]) => p));
  const parentOf = (p: string) => {
    for (let i = p.lastIndexOf('.'); i > 0; i = p.lastIndexOf('.', i - 1)) if (paths.has(p.slice(0, i))) return p.slice(0, i);
    return undefined;
  };
  const render = (p: string, use: string, name: string): string => {
    const children = choices.filter(([q]) => parentOf(q) === p).map(([q, u]) => render(q, u, q.slice(p.length + 1)));
    return `${name} ${use}${children.length ? `(${children.join(', ')})` : ''}`;
  };
  return choices.filter(([p]) => parentOf(p) === undefined).map(([p, use]) => render(p, use, p));
}

export const commands: Record<string, Command> = {
  validate: {
    summary: 'check recipes: schema, plugin names, grid and reference shape',
    help: `Usage: ssfer validate <recipe.yaml…> [--scale s] [--set path=value…] [--plugin FILE…]

Validates each recipe at every scale it defines (or only at --scale) and prints every problem as
file:line:col: path: message (the first 50, then how many more). Exit status 0 when all are valid,
2 otherwise. No training is run and nothing is written — but plugin files the recipe names
(plugins:) or --plugin names are imported, and a plugin file is code that runs: validate only
recipes whose plugin files you trust.

${recipeFlagHelp}
`,
    async run(argv) {
      const { values, positionals } = parse('validate', argv, recipeFlags);
      if (helpOr(values, 'validate')) return 0;
      if (positionals.length === 0) throw new UsageError("name at least one recipe file; see 'ssfer validate --help'");
      let failed = 0;
      for (const file of positionals) {
        const scales = values.scale ? [values.scale] : ['smoke', 'small', 'paper'];
        const messages = new Set<string>();
        const scaleOf = new Map<string, string>();
        let cells = 0;
        for (const scale of scales) {
          try {
            const r = await resolveRecipe(file, { ...recipeOptions(values), scale });
            cells = Math.max(cells, r.cells.length);
          } catch (err) {
            if (!(err instanceof RecipeError)) throw err;
            for (const line of err.message.split('\n')) {
              if (messages.has(line)) continue;
              messages.add(line);
              scaleOf.set(line, scale);
            }
          }
        }
        if (messages.size > 0) {
          failed++;
          // A problem seen only at some scales says at which.
          process.stderr.write(
            `${[...messages].map((m) => (scales.length > 1 && scaleOf.get(m) !== scales[0] ? `${m} (at --scale ${scaleOf.get(m)})` : m)).join('\n')}\n`,
          );
        } else {
          process.stdout.write(`ok  ${file}  (${cells} cell${cells === 1 ? '' : 's'}; scales ${scales.join(', ')})\n`);
        }
      }
      if (failed) process.stderr.write(`ssfer: ${failed} of ${positionals.length} recipe${positionals.length === 1 ? '' : 's'} invalid\n`);
      return failed ? 2 : 0;
    },
  },

  plan: {
    summary: 'show the cells a recipe expands to, their plugins and which stages they share',
    help: `Usage: ssfer plan <recipe.yaml> [--scale s] [--set path=value…] [--plugin FILE…] [--json]

Prints every cell with its resolved plugins, the runs (every cell once per seed: seed 0 of every
cell, then seed 1, …) and which runs have identical inputs for each stage (a run computes each
distinct pre-training once: the cells of one seed share it). Plugin files the recipe names are
imported, so their code runs. With --json, only JSON on stdout:
{"recipe":…,"scale":…,"seed":…,"seeds":N,"cells":[{"id":…,"row":…,"column":…,"plugins":{…},"stages":{…},"config":{…}}],
 "runs":[{"cell":…,"seed_index":k,"seed":…,"stages":{…}}],"shared":[{"stage":…,"key":…,"seed_index":k,"cells":[…]}]}

${recipeFlagHelp}
  --json                     machine-readable output only
`,
    async run(argv) {
      const { values, positionals } = parse('plan', argv, { ...recipeFlags, json: { type: 'boolean' } });
      if (helpOr(values, 'plan')) return 0;
      if (positionals.length !== 1) throw new UsageError("name exactly one recipe file; see 'ssfer plan --help'");
      const recipe = await resolveRecipe(positionals[0]!, recipeOptions(values));
      const stagesOf = (config: CellConfig) =>
        cellStageKeys(recipe.registry, config, { seed: config.seed, scale: recipe.scale, recipeDir: path.dirname(recipe.file) });
      const cells = recipe.cells.map((c) => ({
        id: c.id,
        row: c.row,
        column: c.column,
        labels: { row: c.rowPoint.labels, column: c.columnPoint.labels },
        plugins: pluginsOf(c),
        stages: stagesOf(c.config),
        config: c.config,
      }));
      // The runs in the order `ssfer run` trains them: every cell's seed 0, then every cell's seed 1, …
      const runs = Array.from({ length: recipe.seeds }, (_, k) =>
        recipe.cells.map((c, i) => {
          const seed = seedOf(c.config.seed, k);
          return { cell: c.id, seed_index: k, seed, stages: k === 0 ? cells[i]!.stages : stagesOf({ ...c.config, seed }) };
        }),
      ).flat();
      const shared = STAGES.flatMap((stage) => {
        const groups = new Map<string, { seed_index: number; cells: string[] }>();
        for (const r of runs) {
          const group = groups.get(r.stages[stage]);
          if (group) group.cells.push(r.cell);
          else groups.set(r.stages[stage], { seed_index: r.seed_index, cells: [r.cell] });
        }
        return [...groups].map(([key, g]) => ({ stage, key, seed_index: g.seed_index, cells: g.cells }));
      });
      if (values.json) {
        process.stdout.write(
          `${JSON.stringify({ recipe: recipe.name, title: recipe.title, scale: recipe.scale, seed: recipe.seed, seeds: recipe.seeds, cells, runs, shared })}\n`,
        );
        return 0;
      }
      const seedsText = recipe.seeds > 1 ? `seeds ${recipe.seed}…${seedOf(recipe.seed, recipe.seeds - 1)}` : `seed ${recipe.seed}`;
      const out: string[] = [`${recipe.title}`, `recipe ${recipe.name} · scale ${recipe.scale} · ${seedsText} · ${cells.length} cells`, ''];
      // The plugins every cell uses once, then per cell the choices that vary.
      const common = Object.entries(cells[0]!.plugins).filter(([p, use]) => cells.every((c) => c.plugins[p] === use));
      const varies = (c: (typeof cells)[number]) => Object.entries(c.plugins).filter(([p]) => !common.some(([q]) => q === p));
      out.push(`every cell: ${slotTree(common).join(' · ')}`);
      const width = Math.max(...cells.map((c) => c.id.length));
      for (const c of cells) out.push(`${c.id.padEnd(width)}  ${slotTree(varies(c)).join(' · ')}`.trimEnd());
      const seedWord = (n: number) => `${n} seed${n === 1 ? '' : 's'}`;
      out.push(
        '',
        `Runs: ${cells.length} cells × ${seedWord(recipe.seeds)} = ${runs.length}, in this order (seed k is a cell's seed + k; each run writes cells/<cell>/seed-<k>/):`,
      );
      for (let k = 0; k < recipe.seeds; k++)
        out.push(`  seed ${k} (${seedOf(recipe.seed, k)}): every cell, ${cells.length} run${cells.length === 1 ? '' : 's'}`);
      const what = recipe.seeds > 1 ? `${runs.length} runs` : `${cells.length} cells`;
      out.push('', 'Stages with identical inputs (a run computes each distinct pre-training once; the other stages run per cell and seed):');
      for (const stage of STAGES) {
        const groups = shared.filter((s) => s.stage === stage);
        const sharing = groups.filter((g) => g.cells.length > 1);
        out.push(
          `  ${stage.padEnd(10)} ${groups.length} distinct for ${what}${
            sharing.length
              ? ` (${sharing
                  .map((g) => `${g.key.slice(0, 8)}… ×${g.cells.length}${recipe.seeds > 1 ? ` seed ${g.seed_index}` : ''}`)
                  .slice(0, 6)
                  .join(', ')}${sharing.length > 6 ? ', …' : ''})`
              : ''
          }`,
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
      return 0;
    },
  },

  plugins: {
    summary: 'list the registered plugins, their descriptions and options with defaults',
    help: `Usage: ssfer plugins [kind] [--plugin FILE…] [--json]

Lists the plugins of a kind (or of every kind) with their descriptions and options, the built-in
ones and those --plugin loads: a file (.ts, .mts, .js, .mjs) or an installed package, by its name.

Kinds: ${CORE_KINDS.map((k) => k.name).join(', ')}, and the kinds plugin modules declare (ssfer plugins lists them all).
Writing a plugin: ssfer new plugin <kind> <name>, and docs/plugins.md.
`,
    async run(argv) {
      const { values, positionals } = parse('plugins', argv, { plugin: { type: 'string', multiple: true }, json: { type: 'boolean' } });
      if (helpOr(values, 'plugins')) return 0;
      const kind = positionals[0];
      const registry = await createRegistry(values.plugin ?? []);
      if (kind !== undefined && !registry.hasKind(kind))
        throw new UsageError(
          `unknown kind '${kind}'; kinds: ${registry
            .kinds()
            .map((k) => k.name)
            .join(', ')}`,
        );
      const defs = registry.list(kind);
      if (values.json) {
        process.stdout.write(
          `${JSON.stringify(defs.map((d) => ({ kind: d.kind, name: d.name, description: d.description, options: d.options, file: registry.origin(d.kind, d.name)?.file })))}\n`,
        );
        return 0;
      }
      const out: string[] = [];
      let lastKind = '';
      for (const d of defs) {
        if (d.kind !== lastKind) out.push('', `${d.kind}`);
        lastKind = d.kind;
        out.push(`  ${d.name.padEnd(16)} ${d.description}`);
        for (const line of describeOptions(d.options, '      ')) out.push(line);
      }
      process.stdout.write(`${out.join('\n').trimStart()}\n`);
      return 0;
    },
  },

  synth: {
    summary: 'write a dataset to disk in RAF-DB basic layout (by default the embedded synthetic faces)',
    help: `Usage: ssfer synth --out DIR [--dataset SLOT] [--classes N] [--train N] [--test N] [--size PX] [--seed S] [--format png|jpg] [--plugin FILE…]

Loads the dataset a slot chooses (as a recipe's data.dataset: a plugin name or { use, ...options },
read as YAML and validated; default: the recipe default, ${String((coreSchema().properties.data.properties.dataset as { default?: { use?: string } }).default?.use)})
and writes it as image files with label and face-box files in RAF-DB basic's layout:
  DIR/Image/aligned/train_00001_aligned.png …
  DIR/EmoLabel/list_patition_label.txt      (file name, RAF-DB label 1–7; contempt is 8)
  DIR/Annotation/boundingbox/*_boundingbox.txt  (x1 y1 x2 y2)
  DIR/classes.txt

  --out DIR        folder to write (created; must be empty or absent)
  --dataset SLOT   the dataset, e.g. rafdb or '{use: affectnet, classes: 8}'
  --classes N      the dataset's class setting (its classes option: 7 or 8 for the expression sets)
  --train N        training images (default 2000)
  --test N         test images (default 700)
  --size PX        image height = width (default 224)
  --seed S         seed (default 2024)
  --format F       png (default) or jpg
`,
    async run(argv) {
      const { values, positionals } = parse('synth', argv, {
        out: { type: 'string' },
        dataset: { type: 'string' },
        classes: { type: 'string' },
        train: { type: 'string' },
        test: { type: 'string' },
        size: { type: 'string' },
        seed: { type: 'string' },
        format: { type: 'string' },
        plugin: { type: 'string', multiple: true },
      });
      if (helpOr(values, 'synth')) return 0;
      if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'; see 'ssfer synth --help'`);
      if (!values.out) throw new UsageError("--out DIR is required; see 'ssfer synth --help'");
      const int = (flag: string, v: string | undefined, def: number, min: number) => {
        if (v === undefined) return def;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be a whole number ≥ ${min}, got '${v}'`);
        return n;
      };
      const format = values.format ?? 'png';
      if (format !== 'png' && format !== 'jpg') throw new UsageError(`--format must be png or jpg, got '${format}'`);
      if (fs.existsSync(values.out) && fs.readdirSync(values.out).length > 0) throw new UsageError(`--out ${values.out} is not empty; choose a new folder`);
      const seed = int('seed', values.seed, 2024, 0);
      const flag = (name: string, value: string, at: string, read: (v: Json) => Json = (v) => v): Override => ({
        path: at,
        value: read((parseYaml(value) as Json | undefined) ?? null),
        loc: { file: `<--${name} ${value}>`, line: 1, col: 1 },
      });
      // A bare name is { use: name }, so that --classes can be set beside it.
      const asSlot = (v: Json): Json => (typeof v === 'string' ? { use: v } : v);
      const { config, registry } = await resolveConfig(
        [
          ...(values.dataset !== undefined ? [flag('dataset', values.dataset, 'data.dataset', asSlot)] : []),
          ...(values.classes !== undefined ? [flag('classes', values.classes, 'data.dataset.classes')] : []),
        ],
        { pluginFiles: values.plugin ?? [] },
      );
      const source = registry.create('dataset', config.data.dataset, { seed, scale: 'paper', recipeDir: '.' });
      const data = await source.load({
        imageSize: int('size', values.size, 224, 8),
        trainSize: int('train', values.train, 2000, 1),
        testSize: int('test', values.test, 700, 1),
      });
      const { writeDatasetLayout } = await import('../data/layout.ts');
      const files = await writeDatasetLayout(data, values.out, format);
      process.stdout.write(
        `wrote ${files.length} files to ${values.out} (${data.train.size} train, ${data.test.size} test, ${data.imageSize} px, ${data.classes.length} classes)\n`,
      );
      return 0;
    },
  },

  run: {
    summary: 'train every cell of a recipe and print the table beside the paper',
    help: `Usage: ssfer run <recipe.yaml> [--scale s] [--set path=value…] [--seeds N] [--plugin FILE…] [--backend b] [--json] [--resume [DIR]] [--out DIR] [--profile] [--launcher L] [--detach]

Validates the recipe, then trains every cell (pre-training → supervised fine-tuning with mixing →
semi-supervised fine-tuning) once per seed — every cell's seed 0, then seed 1, … (seed k is the
recipe's seed + k; the cells of one seed share its pre-training) —, evaluates it and runs the
analyses it lists (evaluation.analyses), and writes results/<recipe>/<timestamp>/: the resolved
recipe, per cell and seed cells/<cell>/seed-<k>/ with metrics.json, the confusion matrix (JSON and
PNG) and the analyses' pictures, and table.md and table.json with our numbers (the test accuracy,
or the figure grid.metric names) beside the paper's. A table entry is "mean ± std (paper)" over the
seeds ("ours (paper)" with one); table.json gives per cell ours (the mean), ours_std, ours_runs
(each seed's value), ci95 (the 95 % Student-t interval, cut to [0, 100] for shares; null with one seed) and health (each
figure's mean over the seeds). A recipe with grid.baseline adds each row's paired difference to
the baseline row (same column, same seed) with its 95 % interval: a second block in the printed
table, * where the interval excludes 0; diff and diff_ci95 in table.json. Ctrl-C, SIGTERM and
SIGHUP stop cleanly after the current step (exit 130, 143, 129); finished seeds and every stage's
last epoch checkpoint are kept, and the
run prints the command that continues it. --out is checked first (exit 2 if it cannot be written).
A stage saves an epoch checkpoint at most every SSFER_CHECKPOINT_SECONDS seconds (default 30; 0:
every epoch) and always after its last epoch.

${recipeFlagHelp}
  --backend B                tensorflow | native | wasm | cpu (default: the fastest available)
  --json                     print only the table JSON on stdout
  --resume [DIR]             continue the latest (or the given) results folder of this recipe:
                             finished seeds of cells are kept; an interrupted one continues from
                             its last epoch checkpoint; with a larger --seeds, adds the new seeds
  --out DIR                  results root (default: results)
  --tracking P               where the run is also recorded: local | mlflow (sets tracking: {use: P})
  --tracking-uri U           MLflow tracking server (sets tracking.uri; else MLFLOW_TRACKING_URI); with
                             mlflow, --set tracking.register=NAME registers seed 0's model of the
                             cell with the best mean
  --profile                  time each phase (data, stages, κ, optimizer, checkpoints, evaluation,
                             tracking…) and its kernels, forward and backward: printed at the end
                             and kept as profile.txt and profile.json; the numbers do not change
                             (launcher inline only: the others train in other processes)
  --launcher L               where the units (a seed of a cell each) train: inline (this process, the
                             default) | processes (worker processes on this machine) | slurm (a SLURM
                             job array); sets launcher: {use: L}, its options with --set launcher.X=…
                             (ssfer plugins launcher lists them)
  --detach                   (slurm) submit the job array and a job that builds the table after it,
                             and return at once; follow with ssfer status <run dir>

Launchers: every unit takes a lease in its folder (unit.lock) and records its attempts there
(attempts.jsonl); a shared pre-training is computed by one process under a lock beside its
stage-cache entry while the others wait. A unit whose attempt failed or was killed is started
again (launcher.max_retries, default 2) and continues from its last epoch checkpoint. The run
(run.json, the table, the MLflow parent run) stays with ssfer run, which builds the table at the
end as ssfer collect does. Threads per unit can change the last bits of a sum in the native
kernels: compare launchers at the same threads per unit (launcher.threads_per_worker,
launcher.cpus_per_task; inline: SSFER_NATIVE_THREADS).
`,
    async run(argv) {
      const { values, positionals } = parse('run', argv, {
        ...recipeFlags,
        backend: { type: 'string' },
        json: { type: 'boolean' },
        resume: { type: 'boolean' },
        out: { type: 'string' },
        tracking: { type: 'string' },
        'tracking-uri': { type: 'string' },
        profile: { type: 'boolean' },
        launcher: { type: 'string' },
        detach: { type: 'boolean' },
      });
      if (helpOr(values, 'run')) return 0;
      if (positionals.length < 1 || positionals.length > 2)
        throw new UsageError("name one recipe file (and, with --resume, optionally its results folder); see 'ssfer run --help'");
      if (positionals.length === 2 && !values.resume) throw new UsageError(`unexpected argument '${positionals[1]}'; see 'ssfer run --help'`);
      try {
        checkpointIntervalMs();
      } catch (err) {
        throw new UsageError(`${(err as Error).message}; unset it for the default (30) or give 0 to save every epoch`);
      }
      const options = recipeOptions(values);
      // The tracking flags come before --set, so --set tracking.every=… still applies.
      const tracking: string[] = [];
      if (values.tracking !== undefined) tracking.push(`tracking=${JSON.stringify({ use: values.tracking })}`);
      if (values['tracking-uri'] !== undefined) tracking.push(`tracking.uri=${JSON.stringify(values['tracking-uri'])}`);
      // So does --launcher: --set launcher.workers=… applies to the launcher it names.
      if (values.launcher !== undefined) tracking.push(`launcher=${JSON.stringify({ use: values.launcher })}`);
      options.sets = [...tracking, ...options.sets];
      const recipe = await resolveRecipe(positionals[0]!, options);
      const { runRecipe } = await import('../pipeline/run.ts');
      return runRecipe(recipe, {
        backend: values.backend,
        json: Boolean(values.json),
        resume: values.resume ? (positionals[1] ?? true) : false,
        outRoot: values.out ?? 'results',
        profile: Boolean(values.profile),
        resumeWith: withoutResume(argv),
        invocation: {
          ...(options.scale !== undefined ? { scale: options.scale } : {}),
          sets: options.sets,
          seeds: options.seeds,
          pluginFiles: options.pluginFiles,
        },
        detach: Boolean(values.detach),
      });
    },
  },

  new: {
    summary: 'write a new plugin of a kind: the plugin, its tests and a one-cell recipe that runs it',
    help: `Usage: ssfer new plugin <kind> <name> [--dir DIR]

Writes a working plugin of the kind named <name> into DIR (default: the current folder):
  <name>.ts        the plugin: its options schema and its factory
  <name>.test.ts   its tests, run by 'ssfer test <name>.test.ts'
  <name>.yaml      a recipe of one small cell that uses it: 'ssfer run <name>.yaml --scale smoke'
Each is the guide's example of that kind (docs/plugins.md) under the new name, to edit from
there. The plugin imports only the public API (import { … } from 'ssfer'). A file that exists
already is never overwritten: nothing is written then.

Kinds and their examples: ${TEMPLATE_KINDS.map((k) => `${k} (${pluginTemplate(k)?.example})`).join(', ')}

  --dir DIR        folder to write into (created when missing)
`,
    async run(argv) {
      const { values, positionals } = parse('new', argv, { dir: { type: 'string' } });
      if (helpOr(values, 'new')) return 0;
      const [what, kind, name, ...extra] = positionals;
      if (what !== 'plugin') throw new UsageError(`ssfer new makes plugins: ssfer new plugin <kind> <name>; see 'ssfer new --help'`);
      if (kind === undefined || name === undefined || extra.length)
        throw new UsageError(`name the kind and the plugin: ssfer new plugin <kind> <name>, e.g. ssfer new plugin mixing cutmix; see 'ssfer new --help'`);
      const template = pluginTemplate(kind);
      if (!template) {
        const known = [...CORE_KINDS.map((k) => k.name), ...TEMPLATE_KINDS];
        throw new UsageError(
          `${known.includes(kind) ? `no example of kind '${kind}' to start from yet` : `unknown kind '${kind}'`}; ssfer new plugin makes ${TEMPLATE_KINDS.join(', ')} (docs/plugins.md describes every kind)`,
        );
      }
      if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name) || /\.(?:[cm]?[jt]s|ya?ml)$/i.test(name) || parseYaml(name) !== name)
        throw new UsageError(`'${name}' cannot name a plugin: use letters, digits, '-', '_' or '.', starting with a letter (a word that YAML reads as text)`);
      const registry = await createRegistry();
      if (registry.has(kind, name)) throw new UsageError(`a built-in ${kind} plugin is named '${name}'; choose another name`);
      const dir = path.resolve(values.dir ?? '.');
      if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UsageError(`--dir ${values.dir} is a file, not a folder`);
      const files = renderTemplate(template, name).map((f) => ({ ...f, file: path.join(dir, f.name) }));
      const taken = files.filter((f) => fs.existsSync(f.file));
      if (taken.length)
        throw new UsageError(
          `${taken.map((f) => f.file).join(', ')} ${taken.length === 1 ? 'exists' : 'exist'} already; nothing was written. Choose another name or --dir`,
        );
      for (const f of files) writeAtomic(f.file, f.text);
      const shown = (f: string) => {
        const rel = path.relative(process.cwd(), f);
        return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : f;
      };
      const at = (n: string) => shown(path.join(dir, n));
      const next = [
        [`ssfer test ${at(`${name}.test.ts`)}`, 'run its tests'],
        [`ssfer plugins ${kind} --plugin ${at(`${name}.ts`)}`, 'list it with its options'],
        [`ssfer run ${at(`${name}.yaml`)} --scale smoke`, 'train a small cell with it'],
      ];
      const width = Math.max(...next.map(([c]) => c!.length));
      const guide = fileURLToPath(new URL('../../docs/plugins.md', import.meta.url));
      process.stdout.write(
        `wrote ${files.map((f) => shown(f.file)).join(', ')}\nnext:\n${next.map(([c, what]) => `  ${c!.padEnd(width)}  ${what}`).join('\n')}\n` +
          `The guide to ${kind} plugins (the contract, what the core hands them, what they return): ${guide}#${kind}\n`,
      );
      return 0;
    },
  },

  test: {
    summary: 'run plugin tests written with node:test, importing ssfer and tfjs from this installation',
    help: `Usage: ssfer test <file…>

Runs test files written with Node's test runner (node:test), such as the test 'ssfer new plugin'
writes beside a plugin, in one process. Each file is imported as a plugin file is: it may be
TypeScript, in any folder, and its imports of 'ssfer' and '@tensorflow/tfjs' get this
installation's. TensorFlow.js computes on its JavaScript backend (cpu).

Exit status: 0 when every test passed, 1 when a test failed, 2 when a file cannot be imported.
`,
    async run(argv) {
      const { values, positionals } = parse('test', argv, {});
      if (helpOr(values, 'test')) return 0;
      if (positionals.length === 0) throw new UsageError("name at least one test file; see 'ssfer test --help'");
      const files = positionals.map((f) => path.resolve(f));
      const missing = files.find((f) => !fs.existsSync(f));
      if (missing) throw new UsageError(`test file not found: ${missing}`);
      const { selectBackend } = await import('../engine/backend.ts');
      await selectBackend('cpu');
      for (const file of files) {
        try {
          await importPluginFile(file);
        } catch (err) {
          const { where, message } = importFailure(file, err, 'test file');
          throw new UsageError(`${where}: ${message}`);
        }
      }
      // node:test runs the tests the files declared once they are imported and sets the exit status to 1
      // when one fails: if that has happened already it is kept, and a later failure sets it then.
      return Number(process.exitCode ?? 0);
    },
  },

  sync: {
    summary: 'send the MLflow calls a run could not send (its mlflow-outbox.jsonl) to a tracking server',
    help: `Usage: ssfer sync [DIR] [--tracking-uri U]

Replays, in order, every call in the mlflow-outbox.jsonl files under DIR (a run folder, a
recipe's folder or the results root; default: results) that the server has not acknowledged,
and in a run folder its workers' outboxes (mlflow-outbox.<worker>.jsonl) after the run's own; an
outbox whose next call waits for a run or model another one makes (the pre-training run another
worker created, the registration of a worker's model) is continued after the others.
Each call is recorded as acknowledged as it succeeds, so running sync again sends nothing twice.

  --tracking-uri U           server to send to (default: the URI the run used, else MLFLOW_TRACKING_URI)
`,
    async run(argv) {
      const { values, positionals } = parse('sync', argv, { 'tracking-uri': { type: 'string' } });
      if (helpOr(values, 'sync')) return 0;
      if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'; see 'ssfer sync --help'`);
      const { findOutboxes, syncOutboxes } = await import('../tracking/outbox.ts');
      const dir = positionals[0] ?? 'results';
      const files = findOutboxes(dir);
      if (files.length === 0) throw new UsageError(`no mlflow-outbox.jsonl under ${dir}; runs write one when they use tracking: mlflow`);
      let failed = 0;
      // One sender per server for every file: a launcher's workers' outboxes name the runs its own outbox makes.
      for (const { file, result: r, error } of await syncOutboxes(files, { uri: values['tracking-uri'] })) {
        if (error !== undefined || !r) {
          failed++;
          process.stderr.write(`ssfer sync: ${error}\n`);
          continue;
        }
        process.stdout.write(
          `${file}: ${r.sent} call${r.sent === 1 ? '' : 's'} sent, ${r.acknowledged} already acknowledged${r.runs.length ? `, ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} created` : ''}\n`,
        );
        for (const s of r.skipped) process.stderr.write(`  skipped: ${s}\n`);
      }
      return failed ? 1 : 0;
    },
  },

  worker: {
    summary: 'train units of a run that ssfer run opened (what launchers start; more can join on any machine)',
    help: `Usage: ssfer worker <run dir> [--units KEY,KEY…] [--name NAME] [--log FILE] [--max-retries N]

Takes part in a run that 'ssfer run' opened and a launcher trains: resolves its recipe from the run
folder's launch.json (refused when the recipe changed since), joins its tracker run, and trains
units — a seed of a cell each, named by its folder cells/<cell>/seed-<k> — into the same folder:
the named ones in that order, else the next unfinished one again and again until none is left.
Each unit is taken under a lease in its folder (unit.lock: host, pid, heartbeat; a lease whose
process is gone, or silent for SSFER_LEASE_STALE_SECONDS, default 600, is taken over) and every
attempt is recorded in its attempts.jsonl. A failed attempt is started again (from its last epoch
checkpoint) while the launch's retries last. SIGINT, SIGTERM and SIGHUP stop it after the current
step, its checkpoints kept. Threads: SSFER_NATIVE_THREADS (the native kernels and OpenBLAS).

  --units KEY,KEY  train these units only, in this order
  --name NAME      its name in leases, attempts and ssfer status
  --log FILE       where its output goes (ssfer status shows the end of it for a unit it was killed running)
  --max-retries N  retries per unit (default: the launcher's)

Exit status: 0 nothing left to do, 1 a unit failed for good, 2 bad input, 130/143/129 stopped by a signal.
`,
    async run(argv) {
      const { values, positionals } = parse('worker', argv, {
        units: { type: 'string' },
        name: { type: 'string' },
        log: { type: 'string' },
        'max-retries': { type: 'string' },
      });
      if (helpOr(values, 'worker')) return 0;
      if (positionals.length !== 1) throw new UsageError("name one run folder (results/<recipe>/<timestamp>); see 'ssfer worker --help'");
      const retries = values['max-retries'];
      if (retries !== undefined && !/^\d+$/.test(retries)) throw new UsageError(`--max-retries must be a whole number ≥ 0, got '${retries}'`);
      const units = values.units?.split(',').filter((u) => u !== '');
      const { runWorker } = await import('../pipeline/worker.ts');
      return runWorker(positionals[0]!, {
        ...(units ? { units } : {}),
        ...(retries !== undefined ? { maxRetries: Number(retries) } : {}),
        ...(values.name ? { name: values.name } : {}),
        ...(values.log ? { log: path.resolve(values.log) } : {}),
      });
    },
  },

  status: {
    summary: "where a run's units stand: done, running (where), failed (why), waiting",
    help: `Usage: ssfer status <run dir> [--json]

Reads a run folder (one that is going, finished or was killed; nothing is changed) and prints the
run's state, how many units — a seed of a cell each — are done, running, failed and waiting, then
each running unit with where it runs (pid and host, the worker's name or the SLURM job_task) and
since when, each failed unit with why (its error and the last lines of its stack, or of the log of
the process that was killed running it), and the waiting units (with why the last attempt ended).
A run whose run.json says running while nothing runs it was killed: 'ssfer collect' builds its
table, 'ssfer run <recipe> --resume <dir>' continues it.

  --json   {"dir","title","status","orphaned","detached","launcher","started","finished","cells","seeds",
            "counts":{"done","running","failed","waiting"},"units":[{"key","label","state","attempts","where","error","tail"}]}
`,
    async run(argv) {
      const { values, positionals } = parse('status', argv, { json: { type: 'boolean' } });
      if (helpOr(values, 'status')) return 0;
      if (positionals.length !== 1) throw new UsageError("name one run folder (results/<recipe>/<timestamp>); see 'ssfer status --help'");
      const { runStatus, statusText } = await import('../pipeline/status.ts');
      const report = runStatus(positionals[0]!);
      if (values.json) process.stdout.write(`${JSON.stringify({ ...report, units: report.units.map(({ lastStart: _l, ...u }) => u) })}\n`);
      else process.stdout.write(statusText(report));
      return 0;
    },
  },

  collect: {
    summary: "build a run's table.md and table.json from its finished units (also of a run going on or killed)",
    help: `Usage: ssfer collect <run dir> [--json] [--finish]

Builds table.md and table.json of a run from the units — a seed of a cell each — that finished in
its folder, resolving the recipe as the run did (launch.json; refused when the recipe changed
since), and prints the table. A unit not finished shows as — and is listed, running or waiting,
on stderr; a unit that failed for good shows as failed. It works on a run that is still going
(the table of what finished so far) and on one that was killed. Exit status 0 (2: bad input).

  --json     print only the table JSON on stdout
  --finish   also end the run, as ssfer run does when its launcher is done (what the job after a
             detached SLURM array runs): each cell's figures and the run's end to the tracker,
             run.json's status; exit status 0 complete, 1 a unit failed or is missing
`,
    async run(argv) {
      const { values, positionals } = parse('collect', argv, { json: { type: 'boolean' }, finish: { type: 'boolean' } });
      if (helpOr(values, 'collect')) return 0;
      if (positionals.length !== 1) throw new UsageError("name one run folder (results/<recipe>/<timestamp>); see 'ssfer collect --help'");
      const { collectRun } = await import('../pipeline/collect.ts');
      return collectRun(positionals[0]!, { json: Boolean(values.json), finish: Boolean(values.finish) });
    },
  },

  compare: {
    summary: 'read runs back from MLflow and print their table (or the difference of two runs)',
    help: `Usage: ssfer compare --experiment NAME [--run-id ID] [--against ID] [--tracking-uri U] [--json]

Reads a parent run of an MLflow experiment (the latest one, or --run-id) with its cells' runs
and prints the paper-style table. --against ID prints the difference to another run, cell by cell.

  --experiment NAME          MLflow experiment (the recipe's name unless the recipe set another)
  --run-id ID                which parent run (default: the latest)
  --against ID               a second parent run to compare with
  --tracking-uri U           tracking server (default: MLFLOW_TRACKING_URI)
  --json                     machine-readable output only
`,
    async run(argv) {
      const { values, positionals } = parse('compare', argv, {
        experiment: { type: 'string' },
        'run-id': { type: 'string' },
        against: { type: 'string' },
        'tracking-uri': { type: 'string' },
        json: { type: 'boolean' },
      });
      if (helpOr(values, 'compare')) return 0;
      if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'; see 'ssfer compare --help'`);
      if (!values.experiment) throw new UsageError("--experiment NAME is required; see 'ssfer compare --help'");
      const uri = values['tracking-uri'] ?? process.env.MLFLOW_TRACKING_URI;
      if (!uri) throw new UsageError('no tracking server: pass --tracking-uri U or set MLFLOW_TRACKING_URI');
      const { MlflowClient, MlflowError } = await import('../tracking/client.ts');
      const { readTrackedRun, diffTables, diffText } = await import('../tracking/compare.ts');
      const { tableText } = await import('../report/table.ts');
      try {
        const client = new MlflowClient({ uri });
        const a = await readTrackedRun(client, values.experiment, values['run-id']);
        if (!values.against) {
          if (values.json)
            process.stdout.write(`${JSON.stringify({ run_id: a.run.info.run_id, status: a.run.info.status, cells: a.children.length, table: a.table })}\n`);
          else process.stdout.write(`MLflow run ${a.run.info.run_id} (${a.run.info.status}, ${a.children.length} cell runs)\n\n${tableText(a.table)}`);
          return 0;
        }
        const b = await readTrackedRun(client, values.experiment, values.against);
        const diffs = diffTables(a.table, b.table);
        if (values.json) process.stdout.write(`${JSON.stringify({ run_id: a.run.info.run_id, against: b.run.info.run_id, cells: diffs })}\n`);
        else
          process.stdout.write(
            `${a.table.title}: ${a.run.info.run_id} minus ${b.run.info.run_id}, ${a.table.metric}\n\n${diffText(diffs, a.run.info.run_id.slice(0, 8), b.run.info.run_id.slice(0, 8))}`,
          );
        return 0;
      } catch (err) {
        if (err instanceof MlflowError) {
          process.stderr.write(`ssfer compare: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    },
  },

  export: {
    summary: 'write a cell’s trained model as an ONNX file (preprocessing and class names in its metadata)',
    help: `Usage: ssfer export <cell dir | seed dir | model dir> [--format onnx] [--out FILE] [--plugin FILE…]

Every finished seed of a cell keeps its evaluated weights (the EMA copy where that is what was
evaluated) in cells/<id>/seed-<k>/model/ (a cell folder of one seed stands for that seed's; of
several, name the seed's folder): model.json (backbone and options, preprocessing, class names,
where it came from) and model.weights. export writes that model as a standard ONNX file (opset 17)
that onnxruntime and other ONNX runtimes load without ssfer:

  input  images  float32 [batch, S, S, 3]: RGB pixels in [0, 1], NHWC, the whole face squeezed
                 to S × S (S = the model's image size); the mean/std normalisation is in the graph
  output logits  float32 [batch, classes]: class scores before softmax

The model's metadata_props carry classes (JSON, in output order), image_size, layout,
channel_order, value_range, mean, std, resize, preprocessing (all of these as one JSON),
backbone, source (recipe, cell, dataset, label budget, test accuracy) and ssfer_version.
Backbones that export: vit.

  --format onnx      the file format (default and only one: onnx)
  --out FILE         where to write (a .onnx name in an existing folder; default: <model dir>/model.onnx)
  --plugin FILE      load the plugin file that defines the model's backbone (repeatable)
`,
    async run(argv) {
      const { values, positionals } = parse('export', argv, {
        format: { type: 'string' },
        out: { type: 'string' },
        plugin: { type: 'string', multiple: true },
      });
      if (helpOr(values, 'export')) return 0;
      if (positionals.length !== 1)
        throw new UsageError("name one cell folder or seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or model folder; see 'ssfer export --help'");
      const { exportModel, ExportError } = await import('../export/export.ts');
      const { ModelBundleError } = await import('../model/bundle.ts');
      const { selectBackend } = await import('../engine/backend.ts');
      // Exporting only reads weights: the plain JS backend does it at once, with nothing to load.
      await selectBackend('cpu');
      try {
        const r = await exportModel(positionals[0]!, { format: values.format, out: values.out, pluginFiles: values.plugin ?? [] });
        const p = r.manifest.preprocessing;
        process.stdout.write(
          `wrote ${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ONNX opset ${r.graph.opset}, ${r.graph.nodes} nodes)\n` +
            `  input  images [batch, ${p.image_size}, ${p.image_size}, ${p.channels}] ${p.channel_order} in [${p.value_range.join(', ')}], normalised in the graph\n` +
            `  output logits [batch, ${r.manifest.classes.length}]: ${r.manifest.classes.join(', ')}\n`,
        );
        return 0;
      } catch (err) {
        if (err instanceof ExportError || err instanceof ModelBundleError) throw new UsageError(err.message);
        throw err;
      }
    },
  },

  predict: {
    summary: 'classify the faces in photos with a cell’s trained model and draw them',
    help: `Usage: ssfer predict <cell dir | seed dir | model dir> <image…> [--json] [--out DIR] [--whole-image] [--detector SLOT] [--plugin FILE…]

Finds the faces in each photo with a face detector (face-api's SSD MobileNet v1 by default, on
the weights its package ships), crops each face as the model's training images were made, and
classifies it with the model a finished seed of a cell kept (cells/<id>/seed-<k>/model/; a cell
folder of one seed stands for that seed's; of several, name the seed's folder). Prints per face its box
(x1, y1, x2, y2 in the photo's pixels, after its EXIF orientation), the class and every class's
probability, and writes the photo with the boxes and classes drawn into --out as
<name>.predicted.jpg (.png for other formats).

The crop: training images are whole face images squeezed to the model's square size, and the
model records where the face box sat in them (the median box of its training images, as shares
of the side). A face found in a photo is cropped so that its box sits at that place, the crop
reaching past the photo's edge is mirrored there, and the crop is squeezed to the model's size.

Every photo is read and searched before anything is written: a file that is not an image, or a
photo in which no face is found, stops the command with one message naming each such file
(exit status 2), and nothing is written. --whole-image classifies the whole picture instead.

  --out DIR          where the drawn photos go (created; default: predictions)
  --json             print the predictions as JSON only
  --whole-image      classify each whole picture, squeezed to the model's size (no face detection)
  --detector SLOT    the face detector, a face-boxes plugin as a recipe writes data.boxes, read as
                     YAML (default: face-api; e.g. '{use: face-api, model: tiny, min_confidence: 0.3}')
  --plugin FILE      load a plugin file (the model's backbone, a detector) (repeatable)
`,
    async run(argv) {
      const { values, positionals } = parse('predict', argv, {
        out: { type: 'string' },
        json: { type: 'boolean' },
        'whole-image': { type: 'boolean' },
        detector: { type: 'string' },
        plugin: { type: 'string', multiple: true },
      });
      if (helpOr(values, 'predict')) return 0;
      if (positionals.length < 2)
        throw new UsageError(
          "name a cell folder or seed folder (results/<recipe>/<run>/cells/<id>/seed-<k>) or model folder, then one or more images; see 'ssfer predict --help'",
        );
      if (values['whole-image'] && values.detector !== undefined)
        throw new UsageError('--whole-image classifies whole pictures: it finds no faces, so --detector does not apply');
      const { predict, predictionText, PredictError } = await import('../predict/predict.ts');
      const { ModelBundleError } = await import('../model/bundle.ts');
      const { selectBackend } = await import('../engine/backend.ts');
      await selectBackend();
      try {
        const p = await predict(positionals[0]!, positionals.slice(1), {
          out: values.out ?? 'predictions',
          wholeImage: Boolean(values['whole-image']),
          ...(values.detector !== undefined ? { detector: values.detector } : {}),
          pluginFiles: values.plugin ?? [],
        });
        if (values.json) {
          const m = p.model.manifest;
          process.stdout.write(
            `${JSON.stringify({
              model: { dir: p.model.dir, backbone: m.backbone.plugin, image_size: m.preprocessing.image_size, classes: m.classes, source: m.source },
              detector: p.detector,
              placement: p.placement,
              images: p.images,
            })}\n`,
          );
        } else process.stdout.write(predictionText(p));
        return 0;
      } catch (err) {
        if (err instanceof PredictError || err instanceof ModelBundleError) throw new UsageError(err.message);
        throw err;
      }
    },
  },
};

/**
 * The run's own command line without `--resume [DIR]`: every flag that changes the config
 * (--set, --plugin, --scale, --tracking…) and where it writes (--out), as given, so that the
 * interrupted run's hint continues exactly this run.
 */
const BOOLEAN_FLAGS = new Set(['--json', '--profile', '--detach']);

function withoutResume(argv: readonly string[]): string[] {
  const out: string[] = [];
  let positionals = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--resume') continue;
    if (!a.startsWith('-')) {
      // The first word is the recipe; a second is the folder --resume names.
      if (positionals++ === 0) out.push(a);
      continue;
    }
    out.push(a);
    if (a === '--detach') continue; // a resumed run follows its units; --detach again to return at once
    if (!a.includes('=') && !BOOLEAN_FLAGS.has(a) && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

function describeOptions(schema: JsonSchema, indent: string): string[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(props).map(([k, s]) => {
    const slotKind = s['x-slot'] as string | undefined;
    const def = slotKind
      ? `${slotKind} plugin, default ${JSON.stringify((s.default as { use?: string } | undefined)?.use ?? null)}`
      : `default ${JSON.stringify(s.default ?? null)}`;
    return `${indent}${k}: ${def}${s.description ? ` — ${s.description as string}` : ''}`;
  });
}

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return `ssfer — declarative experiments for semi-supervised facial expression recognition

Usage: ssfer <command> [options]   (ssfer <command> --help for each)

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}
`;
}
