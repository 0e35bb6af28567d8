import { tenantBusy } from '../errors.js'

interface Waiter {
  grant: () => void
  timer: NodeJS.Timeout
  pressureTimer: NodeJS.Timeout | undefined
  /** It has asked for room (onPressure). */
  pressing: boolean
}

export interface BudgetStats {
  capacity: number
  open: number
  waiting: number
  /** Waits that ended in TENANT_BUSY (timed out or queue full). */
  rejected: number
  /** Waits given up because the connection was no longer needed (see TakeOptions.signal). */
  withdrawn: number
}

export interface TakeOptions {
  /** Aborting it withdraws the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal
  /**
   * How long to wait before asking for room (onPressure). 0, the default, asks at once; a pool
   * that already has connections waits a little first, since one of its own is likely to come
   * free sooner than another pool could be closed and a connection opened.
   */
  pressureAfterMs?: number
}

/**
 * The most connections one Silo instance holds open to tenant databases, across every pool,
 * including pools being retired. A connection takes a slot before it is opened and gives it
 * back when it is closed; past the budget, openers wait in a bounded FIFO queue and get
 * 503 TENANT_BUSY when their wait times out. `onPressure` is called when someone has to wait,
 * so the pool cache can close idle pools to make room.
 */
export class ConnectionBudget {
  readonly #capacity: number
  readonly #maxWaiting: number
  readonly #waiters: Waiter[] = []
  #open = 0
  #rejected = 0
  #withdrawn = 0
  onPressure: (() => void) | undefined

  constructor (capacity: number, maxWaiting: number) {
    this.#capacity = capacity
    this.#maxWaiting = maxWaiting
  }

  /** Takes a slot if one is free right now (and nobody is queued before us). */
  tryTake (): boolean {
    if (this.#open < this.#capacity && this.#waiters.length === 0) {
      this.#open++
      return true
    }
    return false
  }

  async take (timeoutMs: number, options: TakeOptions = {}): Promise<void> {
    if (this.tryTake()) return
    if (this.#waiters.length >= this.#maxWaiting) {
      this.#rejected++
      throw tenantBusy()
    }
    const { signal, pressureAfterMs = 0 } = options
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const leave = (): boolean => {
        clearTimeout(waiter.timer)
        clearTimeout(waiter.pressureTimer)
        signal?.removeEventListener('abort', withdraw)
        const index = this.#waiters.indexOf(waiter)
        if (index === -1) return false
        this.#waiters.splice(index, 1)
        return true
      }
      const withdraw = (): void => {
        if (!leave()) return
        this.#withdrawn++
        reject(signal?.reason)
      }
      const waiter: Waiter = {
        grant: () => {
          leave()
          resolve()
        },
        timer: setTimeout(() => {
          if (!leave()) return
          this.#rejected++
          reject(tenantBusy())
        }, timeoutMs),
        pressureTimer: undefined,
        pressing: false
      }
      const press = (): void => {
        waiter.pressing = true
        this.onPressure?.()
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', withdraw, { once: true })
      if (pressureAfterMs <= 0) press()
      else waiter.pressureTimer = setTimeout(press, pressureAfterMs)
    })
  }

  give (): void {
    const next = this.#waiters[0]
    // The slot passes straight to the next waiter: the open count does not change.
    if (next !== undefined) next.grant()
    else this.#open = Math.max(0, this.#open - 1)
  }

  get waiting (): number {
    return this.#waiters.length
  }

  /** Waiters that have asked for room: a pool going idle should give its connections up for them. */
  get pressing (): number {
    let count = 0
    for (const waiter of this.#waiters) if (waiter.pressing) count++
    return count
  }

  stats (): BudgetStats {
    return { capacity: this.#capacity, open: this.#open, waiting: this.#waiters.length, rejected: this.#rejected, withdrawn: this.#withdrawn }
  }
}
