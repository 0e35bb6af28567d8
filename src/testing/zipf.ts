/** Zipf(s) over ranks 0..n-1, rank 0 the hottest: the skewed load of the bench, and the pool-slots test's requests. */

/** The weight of each rank 0..n-1 under Zipf(s), unnormalized: 1 / (rank + 1)^s. */
export function zipfWeights (n: number, s: number): Float64Array {
  return Float64Array.from({ length: n }, (_, rank) => 1 / Math.pow(rank + 1, s))
}

/** Draws ranks under Zipf(s) over 0..n-1; `random` (uniform in [0, 1)) may be seeded. */
export function zipf (n: number, s: number, random: () => number = Math.random): () => number {
  const cdf = new Float64Array(n)
  let total = 0
  zipfWeights(n, s).forEach((weight, rank) => {
    total += weight
    cdf[rank] = total
  })
  return () => {
    const target = random() * total
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
