import pLimit, { type LimitFunction } from 'p-limit'
import type { TenantServer } from '../catalog/catalog-store.js'
import { budgetedPgClient } from './budgeted-pg-client.js'
import { ConnectionBudget, type BudgetStats } from './connection-budget.js'

/** One server's connection budget, and the knex client class whose connections count against it. */
export interface ServerSlots {
  readonly serverId: string
  readonly name: string
  readonly budget: ConnectionBudget
  /** The server's opens under way, and those waiting their turn (see connectConcurrency). */
  readonly gate: LimitFunction
  readonly client: ReturnType<typeof budgetedPgClient>
}

/** A server's budget, and its connections being opened now. */
export type ServerBudgetStats = { server: string, opening: number } & BudgetStats

/** Told of every tenant connection opened, or not, with the name of the server it was for. */
export interface ServerConnectionObserver {
  opened: (tenant: string, durationMs: number, server: string) => void
  failed: (tenant: string, error: Error, server: string) => void
}

export interface ServerBudgetsOptions {
  /** Slots on a server that has no budget of its own (CONNECTION_BUDGET). */
  defaultCapacity: number
  /** Openers waiting for a slot at once, per server. */
  queueMax: number
  /**
   * Connections being opened at once on one server (TENANT_CONNECT_CONCURRENCY). A server starts
   * backends at a rate of its own (about 40 a second on the development machine, from 2 at once as
   * from 32: each then takes 0.7 s instead of 50 ms), so more at once only lengthen each start,
   * and each holds a budget slot meanwhile, a slot an idle connection of a frequent tenant gave up.
   */
  connectConcurrency: number
  /** Longest wait for a slot before TENANT_BUSY. */
  waitMs: number
  observer: ServerConnectionObserver
  /** Someone waits for a slot of this server: make room there. */
  onPressure: (serverId: string) => void
}

/**
 * A connection budget per PostgreSQL server: a server's tenant connections take slots of its own
 * budget only, so a server that is slow or down, holding its slots in opens that wait, never takes
 * another server's. A server without a budget of its own gets CONNECTION_BUDGET in each instance.
 * One with its own budget (`servers add --budget`) gets, once shared (see BudgetSharing), this
 * instance's share of it; unshared (a process with no heartbeat), the whole of it.
 */
export class ServerBudgets {
  readonly #options: ServerBudgetsOptions
  readonly #servers = new Map<string, ServerSlots>()
  /** This instance's shares of budgeted servers, by server id, once sharing has started. */
  #shares: Map<string, number> | undefined
  /** Told when a budgeted server has no share yet (a heartbeat will bring it). */
  #unshared: (() => void) | undefined

  constructor (options: ServerBudgetsOptions) {
    this.#options = options
  }

  /** The slots of the tenant's server, made on first use; its capacity follows the record's budget. */
  of (server: TenantServer): ServerSlots {
    const share = this.#shares?.get(server.id)
    if (server.budget !== null && this.#shares !== undefined && share === undefined) this.#unshared?.()
    const capacity = server.budget === null ? this.#options.defaultCapacity : this.#shares === undefined ? server.budget : share ?? 0
    let slots = this.#servers.get(server.id)
    if (slots === undefined) {
      const budget = new ConnectionBudget(capacity, this.#options.queueMax)
      budget.onPressure = () => { this.#options.onPressure(server.id) }
      // One client class per server: a class per pool would cost each cached tenant memory.
      const { observer } = this.#options
      const name = server.name
      const gate = pLimit(this.#options.connectConcurrency)
      slots = {
        serverId: server.id,
        name,
        budget,
        gate,
        client: budgetedPgClient({
          budget,
          gate,
          waitMs: this.#options.waitMs,
          observer: { opened: (tenant, ms) => { observer.opened(tenant, ms, name) }, failed: (tenant, error) => { observer.failed(tenant, error, name) } }
        })
      }
      this.#servers.set(server.id, slots)
    } else if (slots.budget.capacity !== capacity) {
      slots.budget.setCapacity(capacity)
    }
    return slots
  }

  /** From now on a budgeted server's capacity is this instance's share of it (none until told: `unshared` is called). */
  share (unshared?: () => void): void {
    this.#shares ??= new Map()
    if (unshared !== undefined) this.#unshared = unshared
  }

  /** This instance's share of a budgeted server, from a heartbeat. */
  setShare (serverId: string, capacity: number): void {
    this.share()
    this.#shares?.set(serverId, capacity)
    this.#servers.get(serverId)?.budget.setCapacity(capacity)
  }

  /** The budgeted servers this instance has shares of (or had, before a withdrawal). */
  sharedServers (): string[] {
    return [...this.#shares?.keys() ?? []]
  }

  /** Connections open on the server now. */
  openOn (serverId: string): number {
    return this.#servers.get(serverId)?.budget.stats().open ?? 0
  }

  /** Whether openers wait for a slot of this server. */
  waiting (serverId: string): boolean {
    return (this.#servers.get(serverId)?.budget.waiting ?? 0) > 0
  }

  /** Every server's budget, by name. */
  byServer (): ServerBudgetStats[] {
    return [...this.#servers.values()].map((slots) => ({ server: slots.name, opening: slots.gate.activeCount, ...slots.budget.stats() }))
  }

  /** The budgets summed over servers (a deployment with one server: its budget). */
  total (): BudgetStats {
    const total: BudgetStats = { capacity: 0, open: 0, waiting: 0, rejected: 0 }
    for (const stats of this.byServer()) {
      total.capacity += stats.capacity
      total.open += stats.open
      total.waiting += stats.waiting
      total.rejected += stats.rejected
    }
    if (this.#servers.size === 0) total.capacity = this.#options.defaultCapacity
    return total
  }
}
