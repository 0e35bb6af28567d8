import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The project's root: the nearest folder above this module holding package.json. Tests run
 * compiled from dist/test (and may run from test/ through a TypeScript loader), so a path
 * relative to a test's own file would depend on which.
 */
function findRoot (from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${from}`)
    dir = parent
  }
  return dir
}

export const root = findRoot(dirname(fileURLToPath(import.meta.url)))
