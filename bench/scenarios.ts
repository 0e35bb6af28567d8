/** The bench's scenarios, and which of them a run was asked for. */

export const SCENARIOS = ['provision', 'hot', 'hot instructions', 'wide', 'skewed', 'churn', 'unknown hosts', 'leavers', 'cold', 'cold instructions', 'memory', 'fleet migration', 'fleet list', 'servers', 'move'] as const
export type Scenario = typeof SCENARIOS[number]

/** What a row reports of its scenario (run.ts adds the scenario's name). */
export interface RowFigures { figure: string, value: number, target: string, met: boolean, detail: string }

/** `--only a,b` (or `--only=a,b`): the scenarios named, `fleet-list` read as `fleet list`; undefined for all. */
export function selected (argv: readonly string[]): Set<Scenario> | undefined {
  const at = argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='))
  if (at === -1) return undefined
  const value = argv[at]?.startsWith('--only=') === true ? argv[at]?.slice('--only='.length) : argv[at + 1]
  const names = (value ?? '').split(',').map((name) => name.trim().replaceAll('-', ' ')).filter((name) => name !== '')
  const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name))
  if (names.length === 0 || unknown.length > 0) {
    process.stderr.write(`--only takes scenarios among: ${SCENARIOS.join(', ')} (comma-separated; got ${unknown.length > 0 ? unknown.join(', ') : 'none'})\n`)
    process.exit(2)
  }
  return new Set(names as Scenario[])
}
