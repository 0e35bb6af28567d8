#!/usr/bin/env node
/**
 * `npm run tenants -- ...`: the compiled CLI, bundled into one file (dist/src/cli/tenants.mjs, the package's bin),
 * rebuilt first only when a source changed since the last build, so a command starts in the
 * time node needs to load it rather than the seconds a TypeScript compile takes.
 */
import { buildIfStale } from './build.mjs'

try {
  await buildIfStale()
} catch {
  // tsc has printed its errors.
  process.exit(1)
}
await import('../dist/src/cli/tenants.mjs')
