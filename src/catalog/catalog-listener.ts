import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import pg from 'pg'
import type { PgConnection } from '../db/knex-config.js'
import type { TenantRecord } from './catalog-store.js'
import type { HostResolver } from './host-resolver.js'

const INITIAL_BACKOFF_MS = 250
/** A connect that has not succeeded by then fails, so a reconnect (and a stop() waiting on one) never hangs on an unanswering host. */
const CONNECT_TIMEOUT_MS = 5000

interface CatalogChange {
  kind: 'domain' | 'tenant' | 'sync' | 'key'
  op?: 'insert' | 'delete'
  host?: string
  id?: string
  /** Of a key change: the id of the key the credentials are under now. */
  keyId?: string | null
  /** Of a sync marker: which sync() sent it. */
  token?: string
  /**
   * Of a domain change: its place among its transaction's domain changes. Unused here; it
   * keeps PostgreSQL from folding a repeated change into the first (identical payloads of one
   * transaction are delivered once).
   */
  seq?: number
}

export interface CatalogListenerOptions {
  connection: PgConnection
  resolver: HostResolver
  /** Longest wait between reconnection attempts. */
  maxBackoffMs?: number
  /** Told when the feed is lost (with the error, if any) and when it is back. */
  onState?: (state: { connected: boolean, error?: Error }) => void
  /**
   * Told the id of the key the catalog's credentials are under, on each (re)connect and
   * whenever it changes (`tenants rekey`): see catalogKeyFollower.
   */
  onKeyChange?: (keyId: string | null) => void
  /** Hosts and their tenants to hold in memory from the start (see HostResolver.preload), read after LISTEN. */
  preload?: () => Promise<Array<{ host: string, tenant: TenantRecord }>>
}

/**
 * Keeps this instance in step with the catalog as others change it: LISTENs on
 * `silo_catalog` (see the change-notification migrations), loads every domain into the
 * resolver's index, and applies each change as it is announced. While its connection is
 * down the index is dropped, so the resolver falls back to asking the catalog; on reconnect
 * the index is rebuilt and cached answers are refreshed, since changes may have been missed.
 *
 * A removed domain leaves the index only once the catalog confirms it is gone: the removal may
 * be half of an UPDATE, or followed by the host's return later in the same transaction, and
 * the index may hold more than the catalog, never less (see HostResolver). The confirmation is
 * a query on this same connection, so it is ordered with the notifications around it.
 */
export class CatalogListener {
  readonly #options: CatalogListenerOptions
  /** The connection whose notifications are applied; undefined while there is none. */
  #client: pg.Client | undefined
  /** The connection start() has opened and is reading the index through, until it is installed. */
  #starting: pg.Client | undefined
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #backoffMs = INITIAL_BACKOFF_MS
  #lostOnce = false
  /** sync() calls waiting for their marker, by token. */
  readonly #syncs = new Map<string, { resolve: () => void, reject: (error: Error) => void }>()
  /** Hosts announced removed, to be confirmed by the next check. */
  #unconfirmed = new Set<string>()
  /** Hosts of the check under way; a host announced again (inserted) meanwhile is taken out. */
  #confirming = new Set<string>()
  /** The check under way, if any (it never rejects). */
  #confirmation: Promise<void> | undefined
  /**
   * The feed's queries (sync markers, removal checks), one at a time and in the order asked: a
   * pg client queues queries sent while one is under way only until pg 9 (deprecated since 8.x).
   */
  readonly #queries = pLimit(1)

  constructor (options: CatalogListenerOptions) {
    this.#options = options
  }

  /** Connects and builds the index; throws when the catalog cannot be reached now. */
  async start (): Promise<void> {
    if (this.#stopped) throw stoppedError()
    const client = new pg.Client({ connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...this.#options.connection, application_name: 'silo-listener' })
    // Until the index is installed, notifications wait here, then are applied in order on top of it.
    let held: Array<string | undefined> | undefined = []
    client.on('error', (error) => { this.#lost(client, error) })
    client.on('end', () => { this.#lost(client) })
    client.on('notification', (message) => {
      if (held !== undefined) held.push(message.payload)
      else if (this.#client === client) this.#apply(message.payload)
    })
    try {
      await client.connect()
      if (this.#stopped) throw stoppedError()
      // From here stop() ends it (pg's end() during connect would leave connect() pending forever).
      this.#starting = client
      await client.query('LISTEN silo_catalog')
      // Listening first, then reading: a change in between is applied twice, never missed.
      const { rows } = await client.query<{ host: string }>('select host from domains')
      // A rotation may have happened while the feed was down.
      const identity = await client.query<{ key_id: string | null }>('select key_id from catalog_identity')
      // Read after LISTEN too: a change since is in `held`, applied on top of them below.
      const preloaded = await this.#options.preload?.() ?? []
      // stop() may have come during the reads: it ended this connection, nothing is installed.
      if (this.#stopped) throw stoppedError()
      this.#starting = undefined
      this.#client = client
      this.#unconfirmed = new Set()
      this.#confirming = new Set()
      this.#options.resolver.clear()
      this.#options.resolver.setDomainIndex(new Set(rows.map((row) => row.host)))
      this.#options.onKeyChange?.(identity.rows[0]?.key_id ?? null)
      this.#options.resolver.preload(preloaded)
      const arrived = held
      held = undefined
      for (const payload of arrived) this.#apply(payload)
      if (this.#lostOnce) this.#options.onState?.({ connected: true })
      this.#backoffMs = INITIAL_BACKOFF_MS
    } catch (error) {
      if (this.#starting === client) this.#starting = undefined
      await client.end().catch(() => {})
      throw error
    }
  }

  /**
   * Ends the feed, including the connection of a reconnect under way: once it resolves, no
   * notification is applied and the domain index is gone (a resolver without a feed looks up
   * every host). A start() still connecting ends its connection itself once connected.
   */
  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    const clients = [this.#client, this.#starting]
    this.#client = undefined
    this.#starting = undefined
    this.#options.resolver.setDomainIndex(null)
    this.#abandonSyncs('the catalog feed was stopped')
    await Promise.all(clients.map(async (client) => { await client?.end().catch(() => {}) }))
  }

  /**
   * Resolves once every catalog change committed before the call has been applied here.
   * It sends a marker on the channel and waits for it to come back: PostgreSQL delivers
   * notifications in commit order, so those of earlier transactions are applied first (and
   * removals they announced confirmed). Rejects if the feed is down, or is stopped or lost
   * before the marker arrives.
   */
  async sync (): Promise<void> {
    const client = this.#client
    if (client === undefined) throw new Error('the catalog feed is not connected')
    const token = randomUUID()
    const arrived = new Promise<void>((resolve, reject) => { this.#syncs.set(token, { resolve, reject }) })
    try {
      // Awaited together: a stop or a loss rejects `arrived` while the query may still be under way.
      await Promise.all([
        this.#queries(async () => await client.query("select pg_notify('silo_catalog', $1)", [JSON.stringify({ kind: 'sync', token })])),
        arrived
      ])
    } finally {
      this.#syncs.delete(token)
    }
  }

  get connected (): boolean {
    return this.#client !== undefined
  }

  #apply (payload: string | undefined): void {
    let change: CatalogChange
    try {
      change = JSON.parse(payload ?? '') as CatalogChange
    } catch {
      return
    }
    if (change.kind === 'sync') {
      const token = change.token ?? ''
      // Removals announced before the marker are confirmed first.
      if (this.#syncs.has(token)) void this.#confirmed().then(() => { this.#syncs.get(token)?.resolve() })
      return
    }
    const { resolver } = this.#options
    if (change.kind === 'key') {
      // Cached tenants stay valid (a rekey changes no password); failures may not.
      resolver.forgetUnreadable()
      this.#options.onKeyChange?.(change.keyId ?? null)
      return
    }
    if (change.kind === 'domain' && typeof change.host === 'string') {
      if (change.op === 'delete') {
        resolver.forgetHost(change.host)
        this.#unconfirmed.add(change.host)
        this.#confirm()
      } else {
        resolver.invalidateHost(change.host)
        this.#unconfirmed.delete(change.host)
        this.#confirming.delete(change.host)
      }
    }
    // A tenant changed, or one of its domains did (cached records carry the domain list).
    if (typeof change.id === 'string') resolver.invalidateTenant(change.id)
  }

  /**
   * Asks the catalog which hosts announced removed are still there, and takes the others out
   * of the index. One check at a time; removals announced meanwhile wait for the next. A host
   * announced inserted before the answer is kept whatever the answer says: it may have been
   * inserted after the query read the table (its notification may still arrive before the
   * query's end). Should the check fail, its hosts stay indexed, which is allowed.
   */
  #confirm (): void {
    const client = this.#client
    if (this.#confirmation !== undefined || this.#unconfirmed.size === 0 || client === undefined) return
    const hosts = this.#confirming = this.#unconfirmed
    this.#unconfirmed = new Set()
    this.#confirmation = this.#queries(async () => await client.query<{ host: string }>('select host from domains where host = any($1::text[])', [[...hosts]]))
      .then(({ rows }) => {
        if (this.#client !== client) return
        const present = new Set(rows.map((row) => row.host))
        for (const host of hosts) if (!present.has(host)) this.#options.resolver.unindexHost(host)
      }, () => {})
      .finally(() => {
        if (this.#confirming === hosts) this.#confirming = new Set()
        this.#confirmation = undefined
        this.#confirm()
      })
  }

  /** Resolves when every removal announced so far has been checked. */
  async #confirmed (): Promise<void> {
    while (this.#confirmation !== undefined) await this.#confirmation
  }

  #lost (client: pg.Client, error?: Error): void {
    if (this.#client !== client) return
    this.#client = undefined
    this.#options.resolver.setDomainIndex(null)
    this.#unconfirmed = new Set()
    this.#lostOnce = true
    this.#abandonSyncs('the catalog feed was lost')
    this.#options.onState?.({ connected: false, ...(error === undefined ? {} : { error }) })
    void client.end().catch(() => {})
    this.#reconnect()
  }

  #abandonSyncs (reason: string): void {
    for (const waiting of this.#syncs.values()) waiting.reject(new Error(reason))
    this.#syncs.clear()
  }

  #reconnect (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.start().catch((error: unknown) => {
        if (this.#stopped) return
        this.#options.onState?.({ connected: false, error: error as Error })
        this.#backoffMs = Math.min(this.#backoffMs * 2, this.#options.maxBackoffMs ?? 10000)
        this.#reconnect()
      })
    }, this.#backoffMs)
    this.#timer.unref()
  }
}

function stoppedError (): Error {
  return new Error('the catalog feed was stopped')
}
