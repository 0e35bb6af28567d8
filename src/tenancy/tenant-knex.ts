import { EventEmitter } from 'node:events'
import knex, { type Knex } from 'knex'

/**
 * Knex instances for tenant pools, made for a fraction of what `knex(config)` costs.
 *
 * A Knex instance is a function (`db('articles')`) carrying some 150 methods (`db.select`,
 * `db.raw`, `db.transaction`...). Knex copies every one of them onto each new instance as a
 * closure of its own, which is most of the ~110 µs an instance takes to make and of the ~19 KB
 * of heap it holds: the pool cache makes one per tenant pool, keeps thousands of them, and under
 * churn makes one for nearly every request. Here those methods are
 * read once from an instance knex made itself and shared through the prototype of each tenant's
 * function; what is the instance's own (its client, its user params, its event listeners) is its
 * own, exactly as knex sets it up. The client is made by its class as `knex()` makes it, so the
 * pool, the driver and transactions are knex's own.
 */

/** What knex keeps on each instance (knex's make-knex.js): everything else is shared. */
const OWN = new Set(['context', '_events', '_eventsCount', '_maxListeners', '_internalListeners', 'length', 'name', 'prototype'])
/** Client events a knex instance passes on as its own. */
const FORWARDED = ['start', 'query', 'query-error', 'query-response'] as const

interface Shared {
  /** The prototype of every tenant instance: knex's methods, accessors and EventEmitter methods. */
  instance: object
  /** The prototype of every instance's context (knex's `raw`, `transaction`, `destroy`... that read `this.client`). */
  context: object
}

interface Context {
  client: Knex.Client
  userParams: Record<string, unknown>
  queryBuilder: () => Knex.QueryBuilder
}

let shared: Shared | undefined

/** Read from a knex instance made by knex itself, on first use (after any `QueryBuilder.extend`). */
function sharedParts (): Shared {
  if (shared !== undefined) return shared
  const sample = knex({ client: 'pg' }) as Knex & { context: object }
  const instance = Object.create(Function.prototype) as object
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(sample))) {
    if (!OWN.has(key)) Object.defineProperty(instance, key, descriptor)
  }
  const context = {}
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(sample.context))) {
    if (key !== 'client' && key !== 'userParams') Object.defineProperty(context, key, descriptor)
  }
  // Knex's own copies the sample (its closure's instance); a tenant's copy keeps the tenant's client.
  Object.defineProperty(context, 'withUserParams', {
    configurable: true,
    value: function withUserParams (this: Context, params: Record<string, unknown>): Knex {
      const copy = knexOn(this.client)
      copy.userParams = params
      return copy
    }
  })
  shared = { instance, context }
  return shared
}

/** A Knex instance on `client`, as knex's `makeKnex` makes it but for the shared methods. */
export function knexOn (client: Knex.Client): Knex {
  const parts = sharedParts()
  const context = Object.create(parts.context) as Context
  context.client = client
  context.userParams = {}
  // As knex's: `db('articles')`, `db({ a: 'articles' })`, `db(db.raw(...))`, or a bare builder.
  const db = function knex (tableName?: Knex.TableDescriptor | Knex.AliasDict, options?: { only?: boolean }): Knex.QueryBuilder {
    const builder = context.queryBuilder()
    return tableName !== undefined && tableName !== null && tableName !== '' ? builder.table(tableName, options) : builder
  } as unknown as Knex & { context: Context, _internalListeners: Array<{ eventName: string, listener: (...args: unknown[]) => void }> }
  Object.setPrototypeOf(db, parts.instance)
  db.context = context
  EventEmitter.call(db as unknown as EventEmitter)
  db._internalListeners = []
  for (const eventName of FORWARDED) {
    const listener = (...args: unknown[]): void => { db.emit(eventName, ...args) }
    client.on(eventName, listener)
    db._internalListeners.push({ eventName, listener })
  }
  return db
}

/** `knex(config)` for a config whose `client` is a client class (a tenant pool's). */
export function tenantKnex (config: Knex.Config): Knex {
  const Client = config.client
  if (typeof Client !== 'function') throw new TypeError('a tenant pool is made with a client class')
  return knexOn(new Client({ ...config }))
}
