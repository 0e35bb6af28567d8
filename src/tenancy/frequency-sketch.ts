/**
 * How often each key was asked for lately, in constant memory: a count-min sketch (TinyLFU's, as
 * in Caffeine): four rows of byte counters, four per slot of the cache (256 at least), a key's frequency the
 * smallest of its four, each capped at 15. After `40 × capacity` increments every counter is
 * halved, so the counts follow the recent past rather than all time. Caffeine halves after 10 ×;
 * with 50 slots under Zipf(1.1) over 1,000 keys that window is too short to tell the 50th most
 * asked-for key from the 100th (misses 0.35 against the 0.31 no policy can beat; 0.32 with 40 ×,
 * test/pool-slots.test.ts). Collisions can only make a key look more frequent, never less. It
 * takes keys by their hash (`keyHash`), which its one user, PoolSlots, keeps for each key it holds.
 */

const ROWS = 4
const CAP = 15

export class FrequencySketch {
  readonly #table: Uint8Array
  readonly #mask: number
  readonly #width: number
  readonly #sampleSize: number
  #additions = 0

  /** `capacity`: the number of keys whose frequencies matter (the cache's size). */
  constructor (capacity: number) {
    // At least 256 a row: a few slots would otherwise make rows so narrow that keys asked for once
    // share counters with keys asked for often.
    let width = 256
    while (width < 4 * capacity) width *= 2
    this.#width = width
    this.#mask = width - 1
    this.#table = new Uint8Array(ROWS * width)
    this.#sampleSize = 40 * Math.max(capacity, 1)
  }

  /** Counts one request for the key whose hash (`keyHash`) is `h`: callers keep each key's hash, so a scan hashes nothing. */
  increment (h: number): void {
    const min = this.#min(h)
    if (min >= CAP) return
    // Conservative update: only the counters at the minimum grow, so a collision inflates less.
    for (let row = 0; row < ROWS; row++) {
      const cell = this.#cell(h, row)
      if (this.#table[cell] === min) this.#table[cell] = min + 1
    }
    if (++this.#additions >= this.#sampleSize) this.#age()
  }

  /** The recent requests for the key whose hash is `h`, as counted (never fewer than were made since the last halving). */
  frequency (h: number): number {
    return this.#min(h)
  }

  /** The smallest of the key's four counters (`h` its hash); no array made: scans under pressure ask this of every pool. */
  #min (h: number): number {
    let min = CAP
    for (let row = 0; row < ROWS; row++) min = Math.min(min, this.#table[this.#cell(h, row)] ?? 0)
    return min
  }

  /**
   * The key's counter in each row, each from a hash of its own: with one hash per row, two keys
   * share all four counters 1 in width⁴ times; with h1 + row × h2 (double hashing) it was 1 in
   * width², and a key asked for once sometimes took a frequent one's place.
   */
  #cell (h: number, row: number): number {
    return row * this.#width + (fmix32(h ^ (SEEDS[row] ?? 0)) & this.#mask)
  }

  #age (): void {
    for (let i = 0; i < this.#table.length; i++) this.#table[i] = (this.#table[i] ?? 0) >> 1
    this.#additions = Math.floor(this.#additions / 2)
  }
}

/** Per-row seeds (odd constants from splitmix/murmur). */
const SEEDS = [0x9e3779b9, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f]

/** A key's hash, from which the sketch finds its counters (FNV-1a over its UTF-16 code units). */
export function keyHash (key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h
}

/** murmur3's finalizer: every input bit reaches every output bit. */
function fmix32 (x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
