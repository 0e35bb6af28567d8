import type pg from 'pg'

/** Tables Silo keeps in every tenant database for itself: never copied as the tenant's data. */
export const BOOKKEEPING_TABLES = ['knex_migrations', 'knex_migrations_lock', 'silo_move_changes'] as const

/** One of a tenant database's tables, as a copy needs it. */
export interface TenantTable {
  /** Schema-qualified and quoted, ready for SQL. */
  sql: string
  schema: string
  name: string
  /** Its columns a copy writes (generated columns are computed again on the other side), quoted, in order. */
  columns: string[]
  /** Its primary key's columns, unquoted (empty: none). */
  primaryKey: string[]
}

export interface TenantSequence {
  sql: string
}

/**
 * The tenant's own tables (every ordinary table outside PostgreSQL's schemas, but Silo's
 * bookkeeping), ordered so that a table comes after every table its foreign keys point at: rows
 * are inserted in this order and deleted in the reverse one.
 */
export async function tenantTables (client: pg.ClientBase): Promise<TenantTable[]> {
  const { rows } = await client.query<{ oid: number, schema: string, name: string, columns: string[], primary_key: string[] | null, refs: number[] | null }>(`
    select c.oid::int as oid, n.nspname as schema, c.relname as name,
      (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns,
      (select array_agg(a.attname::text order by k.ord) from pg_constraint p
        cross join lateral unnest(p.conkey) with ordinality as k(attnum, ord)
        join pg_attribute a on a.attrelid = p.conrelid and a.attnum = k.attnum
        where p.conrelid = c.oid and p.contype = 'p') as primary_key,
      (select array_agg(distinct f.confrelid::int) from pg_constraint f
        where f.conrelid = c.oid and f.contype = 'f' and f.confrelid <> c.oid) as refs
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
      and not (n.nspname = 'public' and c.relname = any($1::text[]))
    order by n.nspname, c.relname`, [BOOKKEEPING_TABLES])
  const byOid = new Map(rows.map((row) => [row.oid, row]))
  const ordered: typeof rows = []
  const placed = new Set<number>()
  const visiting = new Set<number>()
  const visit = (row: typeof rows[number]): void => {
    if (placed.has(row.oid) || visiting.has(row.oid)) return // a cycle of foreign keys: any order
    visiting.add(row.oid)
    for (const ref of row.refs ?? []) {
      const target = byOid.get(ref)
      if (target !== undefined) visit(target)
    }
    visiting.delete(row.oid)
    placed.add(row.oid)
    ordered.push(row)
  }
  for (const row of rows) visit(row)
  return ordered.map((row) => ({
    sql: `${client.escapeIdentifier(row.schema)}.${client.escapeIdentifier(row.name)}`,
    schema: row.schema,
    name: row.name,
    columns: (row.columns ?? []).map((column) => client.escapeIdentifier(column)),
    primaryKey: row.primary_key ?? []
  }))
}

/** The tenant's sequences (identity columns' included). */
export async function tenantSequences (client: pg.ClientBase): Promise<TenantSequence[]> {
  const { rows } = await client.query<{ schema: string, name: string }>(`
    select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
      and not (n.nspname = 'public' and c.relname like 'knex\\_migrations%') and not (n.nspname = 'public' and c.relname like 'silo\\_move\\_%')
    order by 1, 2`)
  return rows.map((row) => ({ sql: `${client.escapeIdentifier(row.schema)}.${client.escapeIdentifier(row.name)}` }))
}

/** Each sequence's position in `source`, set the same in `target` (which has the same sequences). */
export async function copySequences (source: pg.ClientBase, target: pg.ClientBase, sequences: TenantSequence[]): Promise<void> {
  for (const sequence of sequences) {
    const { rows } = await source.query<{ last_value: string, is_called: boolean }>(`select last_value, is_called from ${sequence.sql}`)
    const row = rows[0]
    if (row === undefined) continue
    await target.query('select setval($1::regclass, $2::bigint, $3)', [sequence.sql, row.last_value, row.is_called])
  }
}

/** The table's column names unquoted: `columns` read back through escapeIdentifier's inverse. */
export const columnNames = (table: TenantTable): string[] => table.columns.map((column) => column.slice(1, -1).replaceAll('""', '"'))

/** A sequence's name and position. */
export interface SequenceValue {
  schema: string
  name: string
  /** A bigint, as text. */
  lastValue: string
  isCalled: boolean
}

/** The name and position of each of `sequences` (tenantSequences'), read in `client`'s transaction. */
export async function sequenceValues (client: pg.ClientBase, sequences: TenantSequence[]): Promise<SequenceValue[]> {
  const values: SequenceValue[] = []
  for (const sequence of sequences) {
    const { rows } = await client.query<{ schema: string, name: string, last_value: string, is_called: boolean }>(`
      select n.nspname as schema, c.relname as name, s.last_value::text as last_value, s.is_called
      from ${sequence.sql} s, pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1::regclass`, [sequence.sql])
    const row = rows[0]
    if (row !== undefined) values.push({ schema: row.schema, name: row.name, lastValue: row.last_value, isCalled: row.is_called })
  }
  return values
}

/**
 * Each sequence a column of `tables` owns (serial and identity columns, as pg_get_serial_sequence
 * finds them) moved to the highest value in its column when it is behind it, so that the next
 * row gets a key past every loaded one. Returns how many were moved.
 */
export async function advanceSequences (client: pg.ClientBase, tables: TenantTable[]): Promise<number> {
  if (tables.length === 0) return 0
  const { rows } = await client.query<{ tbl: string, col: string, seq: string }>(`
    select t.tbl, quote_ident(a.attname) as col, pg_get_serial_sequence(t.tbl, a.attname)::regclass::text as seq
    from unnest($1::text[]) as t(tbl) join pg_attribute a on a.attrelid = t.tbl::regclass and a.attnum > 0 and not a.attisdropped
    where pg_get_serial_sequence(t.tbl, a.attname) is not null`, [tables.map((table) => table.sql)])
  let moved = 0
  for (const row of rows) {
    // Names as PostgreSQL quoted them (escapeIdentifier, quote_ident, regclass output).
    const result = await client.query(`
      select setval($1::regclass, m.top, true) from (select max(${row.col}) as top from ${row.tbl}) m, ${row.seq} s
      where m.top is not null and m.top > case when s.is_called then s.last_value else s.last_value - 1 end`, [row.seq])
    moved += result.rowCount ?? 0
  }
  return moved
}
