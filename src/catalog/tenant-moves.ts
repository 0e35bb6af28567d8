import type { Knex } from 'knex'

/** A move's phases, in order; `done` and `failed` are final. */
export const MOVE_PHASES = ['preparing', 'copying', 'catching-up', 'frozen', 'switched', 'done', 'failed'] as const
export type MovePhase = typeof MOVE_PHASES[number]

export interface MoveRecord {
  id: string
  tenantId: string
  slug: string
  from: string
  to: string
  phase: MovePhase
  keepSource: boolean
  rowsCopied: number
  changesApplied: number
  /** How long the tenant's writes were frozen (the last attempt's), once it has been. */
  freezeMs: number | null
  error: string | null
  startedAt: Date
  updatedAt: Date
  finishedAt: Date | null
}

interface MoveRow {
  id: string
  tenant_id: string
  slug: string
  from_server: string
  to_server: string
  phase: MovePhase
  keep_source: boolean
  rows_copied: string
  changes_applied: string
  freeze_ms: number | null
  error: string | null
  started_at: Date
  updated_at: Date
  finished_at: Date | null
}

export type MoveProgress = Partial<Pick<MoveRecord, 'phase' | 'rowsCopied' | 'changesApplied' | 'freezeMs' | 'error'>>

/**
 * The catalog's record of moves (tenant_moves) and the tenant-row changes a move makes: its write
 * freeze, and the switch to the new server. See the tenant_moves migration.
 */
export class TenantMoves {
  readonly #knex: Knex

  constructor (knex: Knex) {
    this.#knex = knex
  }

  async start (move: { tenantId: string, slug: string, from: string, to: string, keepSource: boolean }): Promise<MoveRecord> {
    const [row] = await this.#knex<MoveRow>('tenant_moves').insert({
      tenant_id: move.tenantId, slug: move.slug, from_server: move.from, to_server: move.to, keep_source: move.keepSource, phase: 'preparing'
    }).returning('*')
    if (row === undefined) throw new Error('insert returned no row')
    return toRecord(row)
  }

  async update (id: string, progress: MoveProgress): Promise<void> {
    const final = progress.phase === 'done' || progress.phase === 'failed'
    await this.#knex('tenant_moves').where({ id }).update({
      ...(progress.phase === undefined ? {} : { phase: progress.phase }),
      ...(progress.rowsCopied === undefined ? {} : { rows_copied: progress.rowsCopied }),
      ...(progress.changesApplied === undefined ? {} : { changes_applied: progress.changesApplied }),
      ...(progress.freezeMs === undefined ? {} : { freeze_ms: progress.freezeMs }),
      ...(progress.error === undefined ? {} : { error: progress.error }),
      updated_at: this.#knex.fn.now(),
      ...(final ? { finished_at: this.#knex.fn.now() } : {})
    })
  }

  async byId (id: string): Promise<MoveRecord | null> {
    const row = await this.#knex<MoveRow>('tenant_moves').where({ id }).first()
    return row === undefined ? null : toRecord(row)
  }

  /** The moves of a tenant, newest first. */
  async ofTenant (slug: string, limit = 20): Promise<MoveRecord[]> {
    const rows = await this.#knex<MoveRow>('tenant_moves').where({ slug }).orderBy('started_at', 'desc').limit(limit)
    return rows.map(toRecord)
  }

  /** Moves whose record never reached `done` or `failed` (running now, or stopped by a crash). */
  async unfinished (): Promise<MoveRecord[]> {
    const rows = await this.#knex<MoveRow>('tenant_moves').whereNull('finished_at').orderBy('started_at')
    return rows.map(toRecord)
  }

  /**
   * Freezes the tenant's writes for `ms` from now (by the catalog's clock); every instance learns
   * it through the feed. Returns false when the tenant is not active any more.
   */
  async freeze (tenantId: string, ms: number): Promise<boolean> {
    const updated = await this.#knex('tenants').where({ id: tenantId, status: 'active' })
      .update({ frozen_until: this.#knex.raw('now() + make_interval(secs => ?)', [ms / 1000]), updated_at: this.#knex.fn.now() })
    return updated === 1
  }

  async unfreeze (tenantId: string): Promise<void> {
    await this.#knex('tenants').where({ id: tenantId }).whereNotNull('frozen_until').update({ frozen_until: null, updated_at: this.#knex.fn.now() })
  }

  /**
   * Points the tenant at its new server and lifts the freeze, in one transaction with the move's
   * phase, only while the freeze is still on (by the catalog's clock): past its deadline the
   * tenant may have been served from its source again, and the switch is refused (false).
   */
  async switchServer (tenantId: string, serverId: string, moveId: string): Promise<boolean> {
    return await this.#knex.transaction(async (trx) => {
      const updated = await trx('tenants').where({ id: tenantId }).where('frozen_until', '>', trx.fn.now())
        .update({ server_id: serverId, db_host: null, db_port: null, frozen_until: null, updated_at: trx.fn.now() })
      if (updated !== 1) return false
      await trx('tenant_moves').where({ id: moveId }).update({ phase: 'switched', updated_at: trx.fn.now() })
      return true
    })
  }
}

function toRecord (row: MoveRow): MoveRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    slug: row.slug,
    from: row.from_server,
    to: row.to_server,
    phase: row.phase,
    keepSource: row.keep_source,
    rowsCopied: Number(row.rows_copied),
    changesApplied: Number(row.changes_applied),
    freezeMs: row.freeze_ms,
    error: row.error,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at
  }
}
