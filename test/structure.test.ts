import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from './helpers/tap.js'
import { root } from './helpers/paths.js'

interface Facts { cycles: string[][], upward: string[], unlayered: string[], folders: Array<{ folder: string, share: number }> }

// A plain ES module script, loaded by path from the root: the tests run compiled from dist/test.
const { analyse } = await import(pathToFileURL(join(root, 'scripts/structure.mjs')).href) as { analyse: () => Facts }

// The layering README's "Architecture" describes, checked on the real tree: a module that imports
// from a layer above its own (the core importing routes or the CLI, the request path importing the
// tenant lifecycle, the catalog importing either) or an import cycle fails here.
t.test('the source tree: no import cycle, no upward import, every module in a layer', async (t) => {
  const facts = analyse()
  t.same(facts.cycles, [], 'no import cycles')
  t.same(facts.upward, [], 'no module imports from a layer above its own')
  t.same(facts.unlayered, [], 'every module belongs to a layer (add a new top-level file to LAYERS in scripts/structure.mjs)')
  t.ok(facts.folders.every(({ share }) => share < 30), `no folder holds 30% of the code or more (${facts.folders.map(({ folder, share }) => `${folder} ${share}%`).join(', ')})`)
})
