import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { PgConnection } from '../db/knex-config.js'
import type { HostResolver } from './host-resolver.js'

const INITIAL_BACKOFF_MS = 250

interface CatalogChange {
  kind: 'domain' | 'tenant' | 'sync' | 'key'
  op?: 'insert' | 'delete'
  host?: string
  id?: string
  /** Of a key change: the id of the key the credentials are under now. */
  keyId?: string | null
  /** Of a sync marker: which sync() sent it. */
  token?: string
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
}

/**
 * Keeps this instance in step with the catalog as others change it: LISTENs on
 * `silo_catalog` (see the change-notification migration), loads every domain into the
 * resolver's index, and applies each change as it is announced. While its connection is
 * down the index is dropped, so the resolver falls back to asking the catalog; on reconnect
 * the index is rebuilt and cached answers are refreshed, since changes may have been missed.
 */
export class CatalogListener {
  readonly #options: CatalogListenerOptions
  #client: pg.Client | undefined
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #backoffMs = INITIAL_BACKOFF_MS
  #lostOnce = false
  /** sync() calls waiting for their marker, by token. */
  readonly #syncs = new Map<string, { resolve: () => void, reject: (error: Error) => void }>()

  constructor (options: CatalogListenerOptions) {
    this.#options = options
  }

  /** Connects and builds the index; throws when the catalog cannot be reached now. */
  async start (): Promise<void> {
    const client = new pg.Client({ ...this.#options.connection, application_name: 'silo-listener' })
    client.on('error', (error) => { this.#lost(client, error) })
    client.on('end', () => { this.#lost(client) })
    client.on('notification', (message) => { this.#apply(message.payload) })
    await client.connect()
    try {
      if (this.#stopped) throw new Error('listener stopped')
      await client.query('LISTEN silo_catalog')
      // Listening first, then reading: a change in between is applied twice, never missed.
      const { rows } = await client.query<{ host: string }>('select host from domains')
      // A rotation may have happened while the feed was down.
      const identity = await client.query<{ key_id: string | null }>('select key_id from catalog_identity')
      this.#client = client
      this.#options.resolver.clear()
      this.#options.resolver.setDomainIndex(new Set(rows.map((row) => row.host)))
      this.#options.onKeyChange?.(identity.rows[0]?.key_id ?? null)
      if (this.#lostOnce) this.#options.onState?.({ connected: true })
      this.#backoffMs = INITIAL_BACKOFF_MS
    } catch (error) {
      await client.end().catch(() => {})
      throw error
    }
  }

  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    const client = this.#client
    this.#client = undefined
    this.#abandonSyncs('the catalog feed was stopped')
    await client?.end().catch(() => {})
  }

  /**
   * Resolves once every catalog change committed before the call has been applied here.
   * It sends a marker on the channel and waits for it to come back: PostgreSQL delivers
   * notifications in commit order, so those of earlier transactions are applied first.
   * Rejects if the feed is down or is lost before the marker arrives.
   */
  async sync (): Promise<void> {
    const client = this.#client
    if (client === undefined) throw new Error('the catalog feed is not connected')
    const token = randomUUID()
    const arrived = new Promise<void>((resolve, reject) => { this.#syncs.set(token, { resolve, reject }) })
    try {
      await client.query("select pg_notify('silo_catalog', $1)", [JSON.stringify({ kind: 'sync', token })])
    } catch (error) {
      this.#syncs.delete(token)
      throw error
    }
    await arrived
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
      this.#syncs.get(token)?.resolve()
      this.#syncs.delete(token)
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
      if (change.op === 'delete') resolver.forgetHost(change.host)
      else resolver.invalidateHost(change.host)
    }
    // A tenant changed, or one of its domains did (cached records carry the domain list).
    if (typeof change.id === 'string') resolver.invalidateTenant(change.id)
  }

  #lost (client: pg.Client, error?: Error): void {
    if (this.#client !== client) return
    this.#client = undefined
    this.#options.resolver.setDomainIndex(null)
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
        this.#options.onState?.({ connected: false, error: error as Error })
        this.#backoffMs = Math.min(this.#backoffMs * 2, this.#options.maxBackoffMs ?? 10000)
        this.#reconnect()
      })
    }, this.#backoffMs)
    this.#timer.unref()
  }
}
