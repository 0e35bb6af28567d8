import { LRUCache } from 'lru-cache'
import { FrequencySketch, keyHash } from './frequency-sketch.js'

/**
 * What the slots need of an entry: when it was last used, on one clock across both segments (an
 * entry admitted to the main part keeps its time, so the segments' own orders are not one order).
 */
export interface Slotted {
  lastUsed: number
}

/** The share of the slots that takes every newcomer (Caffeine's default window). */
const WINDOW_SHARE = 0.01

/**
 * Which tenants keep a pool: W-TinyLFU (Einziger, Friedman and Manes), as Caffeine does it. A
 * plain LRU lets a stream of tenants seen once push out the ones asked for all the time; here a
 * newcomer enters a small window (1% of the slots, at least one), an LRU of its own, and when
 * the window overflows its least recent entry goes to the main part only if it has been asked
 * for more often lately (a FrequencySketch of every request, cached or not) than the main
 * part's least recent entry, which then leaves; otherwise the newcomer leaves. With one slot
 * the window is everything, a plain LRU. `evicted` is told of each entry that leaves by
 * capacity; `delete` and `clear` leave it to the caller.
 */
export class PoolSlots<E extends Slotted> {
  readonly #window: LRUCache<string, E>
  readonly #main: LRUCache<string, E> | undefined
  readonly #windowMax: number
  readonly #mainMax: number
  readonly #sketch: FrequencySketch
  /** The sketch's hash of each held key, kept: a scan under pressure asks the frequency of every entry. */
  readonly #hashes = new Map<string, number>()
  readonly #evicted: (entry: E) => void
  #clock = 0

  constructor (max: number, evicted: (entry: E) => void) {
    this.#windowMax = Math.max(1, Math.round(max * WINDOW_SHARE))
    this.#mainMax = max - this.#windowMax
    // Both segments are only ordered maps: room is made here before an insert, so they never evict on their own.
    this.#window = new LRUCache({ max: this.#windowMax })
    this.#main = this.#mainMax > 0 ? new LRUCache({ max: this.#mainMax }) : undefined
    this.#sketch = new FrequencySketch(max)
    this.#evicted = evicted
  }

  /** The key's entry, counted as a request for it (found or not) and made the most recent. */
  get (key: string): E | undefined {
    this.#sketch.increment(this.#hashes.get(key) ?? keyHash(key))
    const entry = this.#window.get(key) ?? this.#main?.get(key)
    if (entry !== undefined) entry.lastUsed = ++this.#clock
    return entry
  }

  /** How often the key was asked for lately (see FrequencySketch). */
  frequency (key: string): number {
    return this.#sketch.frequency(this.#hashes.get(key) ?? keyHash(key))
  }

  /** The key's entry, nothing counted or reordered. */
  peek (key: string): E | undefined {
    return this.#window.peek(key) ?? this.#main?.peek(key)
  }

  has (key: string): boolean {
    return this.#window.has(key) || (this.#main?.has(key) ?? false)
  }

  /**
   * Puts a newcomer in the window (a key already held is replaced: the caller retires the old
   * entry first, with `delete`); an entry pushed out of the window is admitted to the main part or
   * evicted.
   */
  set (key: string, entry: E): void {
    this.delete(key)
    entry.lastUsed = ++this.#clock
    if (this.#window.size >= this.#windowMax) this.#overflow()
    this.#window.set(key, entry)
    this.#hashes.set(key, keyHash(key))
  }

  /** Removes the key's entry and answers it (the caller retires it); undefined when none. */
  delete (key: string): E | undefined {
    const entry = this.peek(key)
    if (entry === undefined) return undefined
    if (!this.#window.delete(key)) this.#main?.delete(key)
    this.#hashes.delete(key)
    return entry
  }

  /** Removes every entry and answers them. */
  clear (): E[] {
    const entries = [...this.#window.values(), ...(this.#main?.values() ?? [])]
    this.#window.clear()
    this.#main?.clear()
    this.#hashes.clear()
    return entries
  }

  get size (): number {
    return this.#window.size + (this.#main?.size ?? 0)
  }

  /** Calls `fn` with every entry, nothing counted or reordered and no array made (a scan on a busy path). */
  forEach (fn: (entry: E) => void): void {
    this.#window.forEach((entry) => { fn(entry) })
    this.#main?.forEach((entry) => { fn(entry) })
  }

  values (): E[] {
    return [...this.#window.values(), ...(this.#main?.values() ?? [])]
  }

  /** Keys, most recently used first. */
  keys (): string[] {
    const keys = [...this.#window.keys(), ...(this.#main?.keys() ?? [])]
    const lastUsed = (key: string): number => this.peek(key)?.lastUsed ?? 0
    return keys.sort((a, b) => lastUsed(b) - lastUsed(a))
  }

  /** The window's least recent entry leaves it: into the main part if it is wanted more than that part's least recent, else out. */
  #overflow (): void {
    const key = this.#window.rkeys().next().value
    const entry = key === undefined ? undefined : this.#window.peek(key)
    if (key === undefined || entry === undefined) return
    this.#window.delete(key)
    const main = this.#main
    if (main === undefined) {
      this.#hashes.delete(key)
      this.#evicted(entry)
      return
    }
    if (main.size < this.#mainMax) {
      main.set(key, entry)
      return
    }
    const victimKey = main.rkeys().next().value
    const victim = victimKey === undefined ? undefined : main.peek(victimKey)
    if (victimKey !== undefined && victim !== undefined && this.frequency(key) > this.frequency(victimKey)) {
      main.delete(victimKey)
      main.set(key, entry)
      this.#hashes.delete(victimKey)
      this.#evicted(victim)
    } else {
      this.#hashes.delete(key)
      this.#evicted(entry)
    }
  }
}
