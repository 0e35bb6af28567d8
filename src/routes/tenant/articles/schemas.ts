import { Type, type Static } from '@sinclair/typebox'
import { NO_NUL } from '../../../schemas/text.js'
import { Page, PageQuery } from '../pagination.js'

const Title = Type.String({ minLength: 1, maxLength: 200, pattern: NO_NUL })
const Body = Type.String({ maxLength: 100000, pattern: NO_NUL })

export const Article = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  title: Title,
  body: Body,
  published: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { title: 'Article' })
export type Article = Static<typeof Article>

export const ArticleCreate = Type.Object({
  title: Title,
  body: Body,
  published: Type.Optional(Type.Boolean({ default: false }))
}, { additionalProperties: false, title: 'ArticleCreate' })
export type ArticleCreate = Static<typeof ArticleCreate>

export const ArticleUpdate = Type.Object({
  title: Type.Optional(Title),
  body: Type.Optional(Body),
  published: Type.Optional(Type.Boolean())
}, { additionalProperties: false, minProperties: 1, title: 'ArticleUpdate' })
export type ArticleUpdate = Static<typeof ArticleUpdate>

export const ArticleParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
})
export type ArticleParams = Static<typeof ArticleParams>

export const ArticleListQuery = PageQuery
export type ArticleListQuery = Static<typeof ArticleListQuery>

export const ArticleList = Page(Article, 'ArticleList')
export type ArticleList = Static<typeof ArticleList>
