import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { Article, ArticleCreate, ArticleList, ArticleListQuery, ArticleParams, ArticleUpdate } from '../../schemas/article.js'
import { ErrorBody } from '../../schemas/error.js'
import { notFound, validationFailed } from '../../errors.js'
import { articleStore, decodeCursor } from './article-store.js'

const articleNotFound = (id: number) => notFound(`Article ${id} not found`)
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody }

/** The articles API, served on every tenant host against that tenant's database only. */
export const articleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/articles', {
    schema: { tags: ['tenant'], summary: 'List articles, newest first', querystring: ArticleListQuery, response: { 200: ArticleList, ...errors } }
  }, async (request) => {
    const { limit, cursor } = request.query
    let afterId: number | null = null
    if (cursor !== undefined) {
      afterId = decodeCursor(cursor)
      if (afterId === null) throw validationFailed('querystring/cursor is not a cursor this API issued')
    }
    return await articleStore.page(request.db, limit, afterId)
  })

  app.post('/articles', {
    schema: { tags: ['tenant'], summary: 'Create an article', body: ArticleCreate, response: { 201: Article, ...errors } }
  }, async (request, reply) => {
    const article = await articleStore.create(request.db, request.body)
    return await reply.code(201).send(article)
  })

  app.get('/articles/:id', {
    schema: { tags: ['tenant'], summary: 'Read an article', params: ArticleParams, response: { 200: Article, ...errors } }
  }, async (request) => {
    const article = await articleStore.get(request.db, request.params.id)
    if (article === null) throw articleNotFound(request.params.id)
    return article
  })

  app.patch('/articles/:id', {
    schema: { tags: ['tenant'], summary: 'Change an article', params: ArticleParams, body: ArticleUpdate, response: { 200: Article, ...errors } }
  }, async (request) => {
    const article = await articleStore.update(request.db, request.params.id, request.body)
    if (article === null) throw articleNotFound(request.params.id)
    return article
  })

  app.delete('/articles/:id', {
    schema: { tags: ['tenant'], summary: 'Delete an article', params: ArticleParams, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    if (!(await articleStore.remove(request.db, request.params.id))) throw articleNotFound(request.params.id)
    return await reply.code(204).send(null)
  })
}
