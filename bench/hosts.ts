/** Tenant names of the bench, and how a load run picks the Host of each request. */
import { zipf } from '../src/testing/zipf.js'

export { zipfWeights } from '../src/testing/zipf.js'

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
