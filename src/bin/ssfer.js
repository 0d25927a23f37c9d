#!/usr/bin/env node
// Runs the TypeScript sources directly (no build step) and lets user plugins be TypeScript too.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
