import { load, median, type LoadResult, type LoadOptions } from './load.js'

/** One side of a comparison: a listening server and the requests it gets. */
export interface Side {
  url: string
  path: string
  host: LoadOptions['host']
  /** Called after each of its rounds: lets go of what it holds, so the other side starts even. */
  reset?: () => Promise<void>
}

export interface Comparison {
  baseline: LoadResult
  candidate: LoadResult
  /** Median candidate rate over median baseline rate (2xx per second unless `all`). */
  ratio: number
}

export interface AlternateOptions {
  rounds: number
  connections: number
  durationS: number
  /** Which rate counts (2xx per second unless said). */
  pick?: (result: LoadResult) => number
  /** Wraps each candidate round (not the warm-up): a sampler, a counter. */
  during?: (fn: () => Promise<LoadResult>) => Promise<LoadResult>
  /** Wraps each baseline round the same way: what samples the candidate's rounds costs the machine, the baseline's pay too. */
  duringBaseline?: (fn: () => Promise<LoadResult>) => Promise<LoadResult>
  /** After each pair of rounds (not the warm-up): a measurement that must share the rounds' conditions. */
  between?: () => Promise<void>
}

/**
 * Loads two servers in alternating rounds (baseline, candidate, baseline, ...) after a short
 * warm-up of each, and compares their median rates: on a small shared machine one run of each
 * is at the mercy of whatever else ran just then. `pick` says which rate counts.
 */
export async function alternate (baseline: Side, candidate: Side, options: AlternateOptions): Promise<Comparison> {
  const pick = options.pick ?? ((result: LoadResult) => result.okPerS)
  const run = async (side: Side, durationS: number): Promise<LoadResult> => {
    const result = await load({ url: side.url, path: side.path, host: side.host, connections: options.connections, durationS })
    await side.reset?.()
    return result
  }
  const warm = Math.max(1, Math.round(options.durationS / 4))
  await run(baseline, warm)
  await run(candidate, warm)
  const base: LoadResult[] = []
  const cand: LoadResult[] = []
  const during = options.during ?? (async (fn: () => Promise<LoadResult>) => await fn())
  const duringBaseline = options.duringBaseline ?? (async (fn: () => Promise<LoadResult>) => await fn())
  for (let round = 0; round < options.rounds; round++) {
    base.push(await duringBaseline(async () => await run(baseline, options.durationS)))
    cand.push(await during(async () => await run(candidate, options.durationS)))
    await options.between?.()
  }
  const middle = (results: LoadResult[]): LoadResult => {
    const rate = median(results.map(pick))
    return results.find((result) => pick(result) === rate) ?? results[0] as LoadResult
  }
  const baselineResult = middle(base)
  const candidateResult = middle(cand)
  return {
    baseline: { ...baselineResult, errors: sum(base, 'errors'), non2xx: sum(base, 'non2xx') },
    candidate: { ...candidateResult, errors: sum(cand, 'errors'), non2xx: sum(cand, 'non2xx') },
    ratio: pick(candidateResult) / Math.max(1e-9, pick(baselineResult))
  }
}

/** Errors and non-2xx are summed over every round: one bad round must show. */
function sum (results: LoadResult[], key: 'errors' | 'non2xx'): number {
  return results.reduce((total, result) => total + result[key], 0)
}
