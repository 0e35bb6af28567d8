import { Type, type Static, type TSchema } from '@sinclair/typebox'
import type { Knex } from 'knex'
import { validationFailed } from '../../errors.js'

/**
 * Keyset pagination shared by the tenant API's lists: newest first by a positive integer id, a
 * page of `limit` items and an opaque cursor for the next one. A cursor is base64url of
 * `a:<last id on the page>`: opaque to clients, checked strictly when it comes back.
 */
export function encodeCursor (id: number): string {
  return Buffer.from(`a:${id}`).toString('base64url')
}

/** The id a cursor stands for, or null when it is not a cursor this API issued. */
export function decodeCursor (cursor: string): number | null {
  const match = /^a:([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (match?.[1] === undefined) return null
  const id = Number(match[1])
  return Number.isSafeInteger(id) ? id : null
}

/** The querystring of every list: `limit` (1-100, default 20) and `cursor`. */
export const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'nextCursor of the previous page' }))
}, { additionalProperties: false })
export type PageQuery = Static<typeof PageQuery>

/** The body of a list of `item`: `{ items, nextCursor }`. */
export const Page = <T extends TSchema>(item: T, title: string) => Type.Object({
  items: Type.Array(item),
  nextCursor: Type.Union([Type.String(), Type.Null()])
}, { title })

/** The id after which a page starts, from the query's cursor; a cursor this API did not issue is 400 VALIDATION_FAILED. */
export function pageStart (query: PageQuery): number | null {
  if (query.cursor === undefined) return null
  const afterId = decodeCursor(query.cursor)
  if (afterId === null) throw validationFailed('querystring/cursor is not a cursor this API issued')
  return afterId
}

/**
 * One page of `query` (rows with an integer `id` column), newest first: asks for one row more
 * than the page to know whether another page follows.
 */
export async function keysetPage<Row extends { id: string | number }, Item extends { id: number }> (
  query: Knex.QueryBuilder,
  limit: number,
  afterId: number | null,
  toItem: (row: Row) => Item
): Promise<{ items: Item[], nextCursor: string | null }> {
  query.orderBy('id', 'desc').limit(limit + 1)
  if (afterId !== null) query.where('id', '<', afterId)
  const rows = await query as Row[]
  const items = rows.slice(0, limit).map(toItem)
  const last = items.at(-1)
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null }
}
