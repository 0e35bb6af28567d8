import type { Knex } from 'knex'
import { keysetPage } from '../pagination.js'
import type { Article, ArticleCreate, ArticleUpdate } from './schemas.js'

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

/** The articles of one tenant database: `db` is the request's tenant-bound Knex. */
export const articleStore = {
  async page (db: Knex, limit: number, afterId: number | null): Promise<{ items: Article[], nextCursor: string | null }> {
    return await keysetPage(db<ArticleRow>('articles'), limit, afterId, toArticle)
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
