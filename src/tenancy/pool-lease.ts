import type { Knex } from 'knex'
import { tenantBusy } from '../errors.js'

/** One request's hold on its tenant's pool. */
export interface PoolLease {
  readonly db: Knex
  /** Whether the request may use the pool now; nearly always, at once. */
  readonly admitted: boolean
  /**
   * Idempotent. A lease still waiting for its turn leaves the queue: its request is not served
   * (its client left, and nothing it would have done has begun).
   */
  release: () => void
  /**
   * Calls `fn` once the lease is admitted (at once when it is): with nothing then; with an
   * error when its turn did not come within the wait (TENANT_BUSY) or the cache closed; with
   * null when it was released while it waited.
   */
  whenAdmitted: (fn: AdmissionCallback) => void
}

export type AdmissionCallback = (outcome?: Error | null) => void

/** What a lease reads and counts on its pool's entry. */
export interface Leased {
  readonly db: Knex
  /** Requests admitted onto the pool and not done. */
  leases: number
  /** Requests waiting for their turn, oldest first; undefined when none does. */
  waiting: Set<Lease> | undefined
}

/** Requests that waited their turn and never got it, since the cache was made. */
export interface TurnCounts {
  /** Their client left while they waited (their route never ran). */
  left: number
  /** Their turn did not come within the wait (TENANT_BUSY). */
  timedOut: number
}

/** How a cache lets requests onto its pools. */
export interface LeaseTerms {
  /** Requests let onto one pool at once; the rest wait their turn, in order. */
  admitted: number
  /** The longest a request waits for its turn before TENANT_BUSY. */
  waitMs: number
  /** An admitted lease was given back, and the next waiter, if any, let in. */
  released: (entry: Leased) => void
  /** Counted here by the leases. */
  readonly turns: TurnCounts
}

/**
 * A request's lease, admitted at once while fewer than `terms.admitted` requests hold the pool,
 * else queued on the entry in arrival order. Why a queue of its own before Knex's: a request
 * waiting in the pool's queue for a connection cannot be withdrawn (Knex takes no cancellation),
 * so one whose client left still runs its queries when its turn comes, for no one; a flood of
 * clients that give up and retry then fills the queue with work nobody waits for, ahead of the
 * requests that do. A lease that waits here leaves when its client does (`release`), before any
 * of its work has begun. The limit is generous (eight requests per connection the pool may
 * have), so the pool's own queue still shows how deep the demand is (see makeElastic). A class,
 * with no closure made for a lease admitted at once: this is every request's path.
 */
export class Lease implements PoolLease {
  readonly db: Knex
  readonly #entry: Leased
  readonly #terms: LeaseTerms
  #admitted: boolean
  #done = false
  /** Why it will never be admitted (set when it timed out or was refused while it waited). */
  #outcome: Error | null = null
  #waiter: AdmissionCallback | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (entry: Leased, terms: LeaseTerms) {
    this.db = entry.db
    this.#entry = entry
    this.#terms = terms
    if (entry.leases < terms.admitted && entry.waiting === undefined) {
      entry.leases++
      this.#admitted = true
      return
    }
    this.#admitted = false
    ;(entry.waiting ??= new Set()).add(this)
    this.#timer = setTimeout(timedOut, terms.waitMs, this)
    this.#timer.unref()
  }

  get admitted (): boolean {
    return this.#admitted
  }

  whenAdmitted (fn: AdmissionCallback): void {
    if (this.#admitted) fn()
    else if (this.#done) fn(this.#outcome)
    else this.#waiter = fn
  }

  release (): void {
    if (this.#done) return
    this.#done = true
    if (!this.#admitted) {
      this.#terms.turns.left++
      this.#leave(null)
      return
    }
    const entry = this.#entry
    entry.leases--
    const next = entry.waiting?.values().next().value
    if (next !== undefined) next.#admit()
    this.#terms.released(entry)
  }

  /** Will never be admitted: `error` goes to its request. Nothing happens to a lease admitted or given back. */
  refuse (error: Error): void {
    if (this.#admitted || this.#done) return
    this.#done = true
    this.#leave(error)
  }

  /** Its turn did not come within the wait. */
  timeOut (): void {
    if (this.#admitted || this.#done) return
    this.#terms.turns.timedOut++
    this.refuse(tenantBusy())
  }

  /** Its turn: a lease was given back. */
  #admit (): void {
    this.#dequeue()
    this.#entry.leases++
    this.#admitted = true
    const waiter = this.#waiter
    this.#waiter = undefined
    // Not inside the call that gave the other lease back (a response's close or end): the request goes on from a microtask of its own.
    if (waiter !== undefined) queueMicrotask(waiter)
  }

  #leave (outcome: Error | null): void {
    this.#outcome = outcome
    this.#dequeue()
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.(outcome)
  }

  #dequeue (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const waiting = this.#entry.waiting
    waiting?.delete(this)
    if (waiting?.size === 0) this.#entry.waiting = undefined
  }
}

function timedOut (lease: Lease): void {
  lease.timeOut()
}
