import { hostname } from 'node:os'
import type { Knex } from 'knex'

/** An instance whose heartbeat is older than this is dead: its claims no longer count. */
export const INSTANCE_LEASE_MS = 10_000

/** What this instance holds on one budgeted server, and what it may open there from now. */
export interface BudgetShare {
  serverId: string
  /** Slots it claims in the catalog: at least what it has open, at most what the others leave. */
  claimed: number
  /** Connections it may have open there: its fair share, within what the others leave. */
  capacity: number
}

/**
 * The fair share of `budget` for instance `index` of `count` live ones (sorted by id): the budget
 * split evenly, the remainder to the first instances, so the shares add up to the budget exactly.
 */
export function fairShare (budget: number, count: number, index: number): number {
  return Math.floor(budget / count) + (index < budget % count ? 1 : 0)
}

/**
 * The catalog's record of the serving instances and their claims on each budgeted server's
 * connections (migrations/catalog/20261206000002_instances.ts). Each heartbeat, in one
 * transaction that locks the budgeted servers' rows (so two instances' heartbeats take turns):
 * the instance says it lives, dead instances are removed, and for every server with a budget of
 * its own it claims its fair share, never less than it has open and never more than the other
 * live instances leave. So the live claims never add up to more than a budget, whatever the
 * instances do at once; an instance that joins starts with what is free and gets its share as
 * the others give theirs back.
 */
export class InstanceRegistry {
  readonly id: string
  readonly #knex: Knex

  constructor (knex: Knex, id: string) {
    this.#knex = knex
    this.id = id
  }

  /**
   * One heartbeat. `open` says how many connections this instance has open on each server now.
   * Returns its share of every budgeted server.
   */
  async heartbeat (open: (serverId: string) => number): Promise<BudgetShare[]> {
    return await this.#knex.transaction(async (trx) => {
      const servers = await trx('servers').whereNotNull('connection_budget').orderBy('id').forUpdate()
        .select<Array<{ id: string, connection_budget: number }>>('id', 'connection_budget')
      await trx.raw(`insert into instances (id, hostname, pid) values (?, ?, ?)
        on conflict (id) do update set heartbeat_at = now()`, [this.id, hostname(), process.pid])
      await trx('instances').where('heartbeat_at', '<', trx.raw('now() - make_interval(secs => ?)', [INSTANCE_LEASE_MS / 1000])).delete()
      const live = await trx('instances').orderBy('id').pluck('id') as string[]
      const index = live.indexOf(this.id)
      const claims = await trx('budget_claims').whereNot('instance_id', this.id)
        .groupBy('server_id').select<Array<{ server_id: string, slots: string }>>('server_id', trx.raw('sum(slots) as slots'))
      const othersHold = new Map(claims.map((row) => [row.server_id, Number(row.slots)]))
      const shares = servers.map((server): BudgetShare => {
        const left = Math.max(0, server.connection_budget - (othersHold.get(server.id) ?? 0))
        const capacity = Math.min(fairShare(server.connection_budget, live.length, index), left)
        return { serverId: server.id, claimed: Math.max(open(server.id), capacity), capacity }
      })
      await trx('budget_claims').where({ instance_id: this.id }).delete()
      if (shares.length > 0) {
        await trx('budget_claims').insert(shares.map((share) => ({ instance_id: this.id, server_id: share.serverId, slots: share.claimed })))
      }
      return shares
    })
  }

  /** Leaves: its claims go with it (a closing instance has closed its connections). */
  async leave (): Promise<void> {
    await this.#knex('instances').where({ id: this.id }).delete()
  }
}
