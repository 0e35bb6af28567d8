import { tenantBusy } from '../errors.js'

interface Waiter {
  grant: () => void
  timer: NodeJS.Timeout
}

export interface BudgetStats {
  capacity: number
  open: number
  waiting: number
  /** Waits that ended in TENANT_BUSY (timed out or queue full). */
  rejected: number
}

/**
 * The most connections one Silo instance holds open to tenant databases, across every pool,
 * including pools being retired. A connection takes a slot before it is opened and gives it
 * back when it is closed; past the budget, openers wait in a bounded FIFO queue and get
 * 503 TENANT_BUSY when their wait times out. `onPressure` is called when someone has to wait,
 * so the pool cache can close idle pools to make room.
 */
export class ConnectionBudget {
  #capacity: number
  readonly #maxWaiting: number
  readonly #waiters: Waiter[] = []
  #open = 0
  #rejected = 0
  onPressure: (() => void) | undefined

  constructor (capacity: number, maxWaiting: number) {
    this.#capacity = capacity
    this.#maxWaiting = maxWaiting
  }

  /** Takes a slot if one is free and no one waits for one; false otherwise (nothing changed). */
  tryTake (): boolean {
    if (this.#open >= this.#capacity || this.#waiters.length > 0) return false
    this.#open++
    return true
  }

  /** Waits for a slot; aborting `signal` (the pool was closed meanwhile) gives the place in the queue up. */
  async take (timeoutMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.tryTake()) return
    if (this.#waiters.length >= this.#maxWaiting) {
      this.#rejected++
      throw tenantBusy()
    }
    await new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        clearTimeout(waiter.timer)
        signal?.removeEventListener('abort', abandon)
        const index = this.#waiters.indexOf(waiter)
        if (index !== -1) this.#waiters.splice(index, 1)
      }
      const abandon = (): void => {
        leave()
        reject(signal?.reason)
      }
      const waiter: Waiter = {
        grant: () => {
          leave()
          resolve()
        },
        timer: setTimeout(() => {
          leave()
          this.#rejected++
          reject(tenantBusy())
        }, timeoutMs)
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', abandon, { once: true })
      this.onPressure?.()
    })
  }

  give (): void {
    const next = this.#waiters[0]
    // The slot passes straight to the next waiter (the open count does not change), unless the
    // capacity was lowered below what is open: then it is taken out.
    if (next !== undefined && this.#open <= this.#capacity) next.grant()
    else this.#open = Math.max(0, this.#open - 1)
  }

  get capacity (): number {
    return this.#capacity
  }

  /**
   * A new capacity: raised, waiters take the new slots at once; lowered, connections open past it
   * are not taken from anyone, but their slots are not handed on when they close.
   */
  setCapacity (capacity: number): void {
    this.#capacity = capacity
    while (this.#open < this.#capacity && this.#waiters.length > 0) {
      this.#open++
      this.#waiters[0]?.grant()
    }
  }

  get waiting (): number {
    return this.#waiters.length
  }

  stats (): BudgetStats {
    return { capacity: this.#capacity, open: this.#open, waiting: this.#waiters.length, rejected: this.#rejected }
  }
}
