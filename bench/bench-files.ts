import { fileURLToPath } from 'node:url'

/**
 * Where the bench's own files are, whether it runs compiled (`npm run bench`: dist/bench, plain
 * `node`, as `npm start` runs the service) or from its sources (`node --import tsx bench/run.ts`).
 */
const compiled = !import.meta.url.endsWith('.ts')

/** The project's root (the checkout, not dist/). */
export const projectRoot = fileURLToPath(new URL(compiled ? '../../' : '../', import.meta.url))

/** A bench script beside this one, by its name without extension (`loader`), as the running bench has it. */
export function benchScript (name: string): string {
  return fileURLToPath(new URL(`./${name}${compiled ? '.js' : '.ts'}`, import.meta.url))
}

/** Node's arguments to run `script` (a `benchScript`): the TypeScript loader only from the sources. */
export function nodeArgs (script: string, ...args: string[]): string[] {
  return [...(compiled ? [] : ['--import', 'tsx']), script, ...args]
}
