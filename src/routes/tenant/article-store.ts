import type { Knex } from 'knex'
import type { Article, ArticleCreate, ArticleUpdate } from '../../schemas/article.js'

interface ArticleRow {
  id: string
  title: string
  body: string
  published: boolean
  created_at: Date
  updated_at: Date
}

const toArticle = (row: ArticleRow): Article => ({
  id: Number(row.id),
  title: row.title,
  body: row.body,
  published: row.published,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

/** Page cursors are opaque to clients: base64url of the last id on the page. */
export function encodeCursor (id: number): string {
  return Buffer.from(`a:${id}`).toString('base64url')
}

export function decodeCursor (cursor: string): number | null {
  const match = /^a:([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (match?.[1] === undefined) return null
  const id = Number(match[1])
  return Number.isSafeInteger(id) ? id : null
}

/** The articles of one tenant database: `db` is the request's tenant-bound Knex. */
export const articleStore = {
  async page (db: Knex, limit: number, afterId: number | null): Promise<{ items: Article[], nextCursor: string | null }> {
    const query = db<ArticleRow>('articles').orderBy('id', 'desc').limit(limit + 1)
    if (afterId !== null) query.where('id', '<', afterId)
    const rows = await query
    const items = rows.slice(0, limit).map(toArticle)
    const last = items.at(-1)
    return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null }
  },

  async get (db: Knex, id: number): Promise<Article | null> {
    const row = await db<ArticleRow>('articles').where({ id: String(id) }).first()
    return row === undefined ? null : toArticle(row)
  },

  async create (db: Knex, input: ArticleCreate): Promise<Article> {
    const [row] = await db<ArticleRow>('articles')
      .insert({ title: input.title, body: input.body, published: input.published ?? false })
      .returning('*')
    return toArticle(row as ArticleRow)
  },

  async update (db: Knex, id: number, patch: ArticleUpdate): Promise<Article | null> {
    const [row] = await db<ArticleRow>('articles')
      .where({ id: String(id) })
      .update({ ...patch, updated_at: db.fn.now() as unknown as Date })
      .returning('*')
    return row === undefined ? null : toArticle(row as ArticleRow)
  },

  async remove (db: Knex, id: number): Promise<boolean> {
    return (await db('articles').where({ id: String(id) }).delete()) > 0
  }
}
