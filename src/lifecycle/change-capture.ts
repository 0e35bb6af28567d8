import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import type { TenantTable } from '../db/tenant-tables.js'

/**
 * Change capture for a move, made of plain triggers, so it works on any PostgreSQL (no
 * `wal_level=logical`, no superuser, no replication slot): while the tenant's data is copied,
 * every row written in the source database is noted by its primary key in `silo_move_changes`.
 * Catching up reads the current state of the noted rows from the source and writes it over the
 * target's, then forgets the notes it applied. A note is only a key, so applying one twice, or
 * one for a row already copied, changes nothing: the copy and the notes never need to agree on
 * a point in time, only the notes must cover everything the copy may have missed.
 *
 * The triggers are installed (and committed) before the copy's snapshot is taken: CREATE TRIGGER
 * waits for every transaction writing the table, so a write the snapshot does not see fired
 * them. Notes are consumed by id, never by "ids above the last seen": ids are handed out at
 * insert and committed out of order, so a lower id may appear after a higher one was read.
 */

const LOG = 'public.silo_move_changes'
const CAPTURE = 'public.silo_move_capture'
const CAPTURE_TRUNCATE = 'public.silo_move_capture_truncate'
const TRIGGER = 'silo_move_capture'
const TRIGGER_TRUNCATE = 'silo_move_capture_truncate'
/** Notes applied per round trip. */
const BATCH = 2000
/** Catching up before a freeze stops once a round finds no more notes than this. */
const QUIET_ENOUGH = 200
/** ...or after this many rounds (writes outpace the copy: the freeze then has more to do). */
const MAX_ROUNDS = 500

/**
 * Installs the capture on every table (one transaction); drops a previous move's first. CREATE
 * TRIGGER waits for the transactions writing each table, and writes queue behind it meanwhile
 * (reads do not): `lockTimeoutMs` bounds that wait, and the move fails (55P03) rather than hold
 * the tenant's writes behind a long transaction.
 */
export async function installCapture (source: pg.ClientBase, tables: TenantTable[], lockTimeoutMs: number): Promise<void> {
  await source.query('begin')
  try {
    await source.query(`set local lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`)
    // A previous move's leftovers only: DROP TRIGGER locks out reads too, so it is not run for nothing.
    const { rows } = await source.query<{ left: boolean }>(`select exists (select 1 from pg_trigger where tgname in ('${TRIGGER}', '${TRIGGER_TRUNCATE}'))
      or to_regclass('${LOG}') is not null or to_regproc('${CAPTURE}') is not null or to_regproc('${CAPTURE_TRUNCATE}') is not null as left`)
    if (rows[0]?.left === true) await dropCaptureObjects(source, tables)
    await source.query(`create table ${LOG} (id bigserial primary key, tbl text not null, pk jsonb)`)
    await source.query(`
      create function ${CAPTURE}() returns trigger language plpgsql as $$
      declare
        r jsonb;
      begin
        if tg_op in ('UPDATE', 'DELETE') then
          r := to_jsonb(old);
          insert into ${LOG} (tbl, pk) select tg_table_schema || '.' || tg_table_name, jsonb_object_agg(k, r -> k) from unnest(tg_argv) k;
        end if;
        if tg_op in ('UPDATE', 'INSERT') then
          r := to_jsonb(new);
          insert into ${LOG} (tbl, pk) select tg_table_schema || '.' || tg_table_name, jsonb_object_agg(k, r -> k) from unnest(tg_argv) k;
        end if;
        return null;
      end $$`)
    await source.query(`
      create function ${CAPTURE_TRUNCATE}() returns trigger language plpgsql as $$
      begin
        insert into ${LOG} (tbl, pk) values (tg_table_schema || '.' || tg_table_name, null);
        return null;
      end $$`)
    for (const table of tables) {
      const keys = table.primaryKey.map((column) => source.escapeLiteral(column)).join(', ')
      await source.query(`create trigger ${TRIGGER} after insert or update or delete on ${table.sql} for each row execute function ${CAPTURE}(${keys})`)
      await source.query(`create trigger ${TRIGGER_TRUNCATE} after truncate on ${table.sql} for each statement execute function ${CAPTURE_TRUNCATE}()`)
    }
    await source.query('commit')
  } catch (error) {
    await source.query('rollback').catch(() => {})
    throw error
  }
}

/** Removes the capture (triggers, functions, notes); what is already gone is skipped. */
export async function removeCapture (source: pg.ClientBase, tables: TenantTable[]): Promise<void> {
  await source.query('begin')
  try {
    await dropCaptureObjects(source, tables)
    await source.query('commit')
  } catch (error) {
    await source.query('rollback').catch(() => {})
    throw error
  }
}

async function dropCaptureObjects (client: pg.ClientBase, tables: TenantTable[]): Promise<void> {
  for (const table of tables) {
    await client.query(`drop trigger if exists ${TRIGGER} on ${table.sql}`)
    await client.query(`drop trigger if exists ${TRIGGER_TRUNCATE} on ${table.sql}`)
  }
  await client.query(`drop function if exists ${CAPTURE}() cascade`)
  await client.query(`drop function if exists ${CAPTURE_TRUNCATE}() cascade`)
  await client.query(`drop table if exists ${LOG}`)
}

/**
 * Copies every table's rows from `source` to `target` (emptied first: it is a copy in the making),
 * in foreign key order, with COPY in binary between the two connections: no row passes through JavaScript.
 * `source` should be in a REPEATABLE READ transaction, so that the tables are read at one point
 * in time. Returns the rows copied.
 */
export async function copyTables (source: pg.ClientBase, target: pg.ClientBase, tables: TenantTable[]): Promise<number> {
  if (tables.length > 0) await target.query(`truncate table ${tables.map((table) => table.sql).join(', ')}`)
  let rows = 0
  for (const table of tables) rows += await copyTable(source, target, table)
  return rows
}

async function copyTable (source: pg.ClientBase, target: pg.ClientBase, table: TenantTable): Promise<number> {
  if (table.columns.length === 0) return 0
  const columns = table.columns.join(', ')
  const reader = source.query(copyTo(`copy ${table.sql} (${columns}) to stdout (format binary)`))
  const writer = target.query(copyFrom(`copy ${table.sql} (${columns}) from stdin (format binary)`))
  await pipeline(reader, writer)
  return writer.rowCount
}

/**
 * One round of catching up: up to BATCH notes, oldest first, applied to `target` in one
 * transaction (the noted rows deleted there, then their current source rows inserted), then
 * forgotten in the source. Returns how many notes it applied (0: none was waiting).
 */
export async function catchUp (source: pg.ClientBase, target: pg.ClientBase, tables: TenantTable[]): Promise<number> {
  const { rows: notes } = await source.query<{ id: string, tbl: string, pk: Record<string, unknown> | null }>(
    `select id, tbl, pk from ${LOG} order by id limit ${BATCH}`)
  if (notes.length === 0) return 0
  const byTable = new Map<string, { keys: Map<string, Record<string, unknown>>, truncated: boolean }>()
  for (const note of notes) {
    let entry = byTable.get(note.tbl)
    if (entry === undefined) byTable.set(note.tbl, entry = { keys: new Map(), truncated: false })
    if (note.pk === null) entry.truncated = true
    else entry.keys.set(JSON.stringify(note.pk), note.pk)
  }
  const touched = tables.filter((table) => byTable.has(`${table.schema}.${table.name}`))
  await target.query('begin')
  try {
    // Deletes children first, inserts parents first (tables are in foreign key order).
    for (const table of [...touched].reverse()) {
      const entry = byTable.get(`${table.schema}.${table.name}`)
      if (entry === undefined) continue
      if (entry.truncated) await target.query(`delete from ${table.sql}`)
      else await target.query(`delete from ${table.sql} t using jsonb_populate_recordset(null::${table.sql}, $1::jsonb) k where ${keyMatch(target, table)}`, [JSON.stringify([...entry.keys.values()])])
    }
    for (const table of touched) {
      const entry = byTable.get(`${table.schema}.${table.name}`)
      if (entry === undefined) continue
      if (entry.truncated) {
        await copyTable(source, target, table)
        continue
      }
      const { rows } = await source.query<{ row: unknown }>(
        `select to_jsonb(t) as row from ${table.sql} t join jsonb_populate_recordset(null::${table.sql}, $1::jsonb) k on ${keyMatch(source, table)}`,
        [JSON.stringify([...entry.keys.values()])])
      if (rows.length === 0) continue
      const columns = table.columns.join(', ')
      await target.query(`insert into ${table.sql} (${columns}) overriding system value select ${columns} from jsonb_populate_recordset(null::${table.sql}, $1::jsonb)`,
        [JSON.stringify(rows.map((row) => row.row))])
    }
    await target.query('commit')
  } catch (error) {
    await target.query('rollback').catch(() => {})
    throw error
  }
  await source.query(`delete from ${LOG} where id = any($1::bigint[])`, [notes.map((note) => note.id)])
  return notes.length
}

/** Applies notes until a round finds few, so a freeze has little left to do; `check` runs before each round (and may throw to stop). */
export async function catchUpUntilQuiet (source: pg.ClientBase, target: pg.ClientBase, tables: TenantTable[], check: () => void): Promise<number> {
  let applied = 0
  for (let round = 0; round < MAX_ROUNDS; round++) {
    check()
    const count = await catchUp(source, target, tables)
    applied += count
    if (count <= QUIET_ENOUGH) break
  }
  return applied
}

/** `t.<key> = k.<key> and ...` for the table's primary key. */
function keyMatch (client: pg.ClientBase, table: TenantTable): string {
  return table.primaryKey.map((column) => `t.${client.escapeIdentifier(column)} = k.${client.escapeIdentifier(column)}`).join(' and ')
}
