import autocannon from 'autocannon'

export interface LoadOptions {
  /** Base URL of a listening server. */
  url: string
  /** Path of every request, or a function giving one per request. */
  path: string | (() => string)
  /** Host header of each request. */
  host: () => string
  connections: number
  durationS: number
}

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  okPerS: number
  /** All responses per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  non2xx: number
  errors: number
}

/** Drives a listening server with autocannon, a Host (and path) chosen per request. */
export async function load (options: LoadOptions): Promise<LoadResult> {
  const pathOf = typeof options.path === 'string' ? () => options.path as string : options.path
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationS,
    requests: [{
      method: 'GET',
      setupRequest: (request) => ({ ...request, path: pathOf(), headers: { ...request.headers, host: options.host() } })
    }]
  })
  const requests = result.requests.total
  const ok = requests - result.non2xx
  return {
    okPerS: ok / options.durationS,
    rps: requests / options.durationS,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts
  }
}

/** Zipf(s) over ranks 0..n-1: rank 0 the hottest. */
export function zipf (n: number, s: number): () => number {
  const cdf = new Float64Array(n)
  let total = 0
  for (let rank = 0; rank < n; rank++) {
    total += 1 / Math.pow(rank + 1, s)
    cdf[rank] = total
  }
  return () => {
    const target = Math.random() * total
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] ?? 0) < target) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export const median = (values: number[]): number => percentile(values, 50)

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? NaN
}
