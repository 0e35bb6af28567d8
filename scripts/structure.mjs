/**
 * Facts about the source tree anyone can re-check: `node scripts/structure.mjs [--json]`.
 * - import cycles among src/ modules (type-only imports included: a cycle of types is still a knot);
 * - upward imports: a module importing from a layer above its own (the core never imports the
 *   HTTP app, routes or the CLI; the request path never imports the tenant lifecycle);
 * - lines per folder of src/, and the largest folder's share.
 * Exits 1 when there is a cycle or an upward import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')

/**
 * Layers, lowest first. A module may import from its own layer and the ones below. A path is
 * matched by its first listed prefix.
 */
export const LAYERS = [
  ['foundation', ['errors.ts', 'events.ts', 'config.ts', 'env-schema.ts', 'env-validator.ts', 'logger.ts', 'types/', 'dev-secrets.ts']],
  ['db', ['db/']],
  ['catalog', ['catalog/']],
  ['request path', ['tenancy/']],
  ['lifecycle', ['lifecycle/']],
  ['core', ['silo.ts', 'demo-tenants.ts', 'dev-mode.ts', 'start-up.ts', 'testing/']],
  ['http', ['schemas/', 'routes/', 'app.ts', 'error-handler.ts', 'request-logging.ts', 'deferred-logger.ts', 'metrics.ts', 'first-contact.ts', 'schema-compilers.ts']],
  ['cli', ['cli/']],
  ['entry', ['server.ts']],
  // Browser code, bundled on its own: it talks to the service over HTTP only and nothing imports it.
  ['console', ['console/']]
]

/** Files under src/ that a tool writes. */
const GENERATED = new Set(['console/api-types.ts'])

const layerOf = (file) => {
  const index = LAYERS.findIndex(([, prefixes]) => prefixes.some((prefix) => file === prefix || file.startsWith(prefix)))
  return index
}

function walk (dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return walk(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

/** Relative imports of a file, as paths under src/ (`.js` specifiers mapped to their `.ts` source). */
function importsOf (file, text) {
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((match) => match[1])
  specifiers.push(...[...text.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map((match) => match[1]))
  return specifiers
    .map((specifier) => relative(src, normalize(join(dirname(join(src, file)), specifier))).replace(/\.js$/, '.ts'))
    .filter((target) => !target.startsWith('..'))
}

export function analyse () {
  const files = walk(src).map((path) => relative(src, path)).sort()
  const graph = new Map()
  const lines = new Map()
  for (const file of files) {
    const text = readFileSync(join(src, file), 'utf8')
    graph.set(file, importsOf(file, text))
    const folder = file.includes('/') ? file.split('/')[0] + '/' : '(top level)'
    // Generated code (the console's API types) is not code anyone wrote: it does not count.
    if (!GENERATED.has(file)) lines.set(folder, (lines.get(folder) ?? 0) + text.split('\n').length)
  }
  const upward = []
  const unlayered = files.filter((file) => layerOf(file) < 0)
  for (const [file, targets] of graph) {
    for (const target of targets) {
      if (layerOf(target) > layerOf(file)) upward.push(`${file} -> ${target} (${LAYERS[layerOf(file)]?.[0]} imports ${LAYERS[layerOf(target)]?.[0]})`)
    }
  }
  // Cycles: Tarjan's strongly connected components of more than one module (or a self-import).
  const cycles = []
  let counter = 0
  const index = new Map(); const low = new Map(); const stack = []; const onStack = new Set()
  const connect = (node) => {
    index.set(node, counter); low.set(node, counter); counter++
    stack.push(node); onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      if (!index.has(next)) { connect(next); low.set(node, Math.min(low.get(node), low.get(next))) } else if (onStack.has(next)) low.set(node, Math.min(low.get(node), index.get(next)))
    }
    if (low.get(node) === index.get(node)) {
      const component = []
      let member
      do { member = stack.pop(); onStack.delete(member); component.push(member) } while (member !== node)
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(component.sort())
    }
  }
  for (const file of files) if (!index.has(file)) connect(file)
  const total = [...lines.values()].reduce((a, b) => a + b, 0)
  const folders = [...lines.entries()].sort((a, b) => b[1] - a[1]).map(([folder, count]) => ({ folder, lines: count, share: Math.round(1000 * count / total) / 10 }))
  return { modules: files.length, lines: total, cycles, upward, unlayered, folders }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const facts = analyse()
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`)
  } else {
    process.stdout.write(`${facts.modules} modules, ${facts.lines} lines under src/\n`)
    process.stdout.write(`import cycles: ${facts.cycles.length}${facts.cycles.map((c) => `\n  ${c.join(' <-> ')}`).join('')}\n`)
    process.stdout.write(`upward imports: ${facts.upward.length}${facts.upward.map((u) => `\n  ${u}`).join('')}\n`)
    if (facts.unlayered.length > 0) process.stdout.write(`modules in no layer: ${facts.unlayered.join(', ')}\n`)
    for (const { folder, lines, share } of facts.folders) process.stdout.write(`  ${folder.padEnd(14)} ${String(lines).padStart(6)} lines  ${share}%\n`)
  }
  process.exitCode = facts.cycles.length + facts.upward.length + facts.unlayered.length > 0 ? 1 : 0
}
