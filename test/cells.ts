import { runCell, type CellHooks, type CellOutput } from '../src/pipeline/cell.ts';
import { RunScope } from '../src/pipeline/scope.ts';
import { resolveRecipe, type ResolveOptions } from '../src/recipe/recipe.ts';

/** Hooks that report nothing and never stop. */
export const quietHooks: CellHooks = { onStep: () => {}, shouldStop: () => false, note: () => {} };

/** Resolves a recipe and runs its first cell in process, in a run scope of its own that is closed after. */
export async function runFirstCell(recipeFile: string, options: ResolveOptions = {}, hooks: CellHooks = quietHooks): Promise<CellOutput> {
  const recipe = await resolveRecipe(recipeFile, options);
  const scope = new RunScope(recipe.registry);
  try {
    return await runCell(scope, recipe, recipe.cells[0]!, hooks);
  } finally {
    scope.close();
  }
}
