/** Tenant names of the bench, and how a load run picks the Host of each request. */
export const slugOf = (i: number): string => `t${String(i).padStart(5, '0')}`
export const hostOf = (i: number): string => `${slugOf(i)}.bench`

/** Declarative, so it can cross into the load generator's own process. */
export type HostSpec =
  | { kind: 'fixed', host: string }
  /** hostOf(i), i uniform over 0..n-1. */
  | { kind: 'uniform', n: number }
  /** hostOf(rank), rank Zipf(s) over 0..n-1 (rank 0 the hottest). */
  | { kind: 'zipf', n: number, s: number }
  /** A fresh random host no catalog knows, every request. */
  | { kind: 'unknown' }

export function hostPicker (spec: HostSpec): () => string {
  switch (spec.kind) {
    case 'fixed': return () => spec.host
    case 'uniform': return () => hostOf(Math.floor(Math.random() * spec.n))
    case 'zipf': {
      const rank = zipf(spec.n, spec.s)
      return () => hostOf(rank())
    }
    case 'unknown': return () => `u${Math.random().toString(36).slice(2)}.bench`
  }
}

/** The weight of each rank 0..n-1 under Zipf(s), unnormalized: 1 / (rank + 1)^s. */
export function zipfWeights (n: number, s: number): Float64Array {
  return Float64Array.from({ length: n }, (_, rank) => 1 / Math.pow(rank + 1, s))
}

/** Zipf(s) over ranks 0..n-1: rank 0 the hottest. */
export function zipf (n: number, s: number): () => number {
  const cdf = new Float64Array(n)
  let total = 0
  zipfWeights(n, s).forEach((weight, rank) => {
    total += weight
    cdf[rank] = total
  })
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
