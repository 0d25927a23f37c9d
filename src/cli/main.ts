import { PluginLoadError } from '../core/registry.ts';
import { RecipeError } from '../recipe/diagnostics.ts';
import { UsageError } from '../core/errors.ts';
import { commands, usage } from './commands.ts';

/** Entry point: returns the exit status (0 ok, 1 failure while running, 2 invalid input). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`ssfer: unknown command '${name}'; commands: ${Object.keys(commands).join(', ')} (ssfer --help)\n`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof RecipeError) {
      const n = err.diagnostics.length;
      process.stderr.write(`${err.message}\nssfer: ${n} problem${n === 1 ? '' : 's'} found; nothing was run\n`);
      return 2;
    }
    if (err instanceof UsageError || err instanceof PluginLoadError) {
      process.stderr.write(`ssfer ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`ssfer ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
