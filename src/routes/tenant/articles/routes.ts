import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { notFound } from '../../../errors.js'
import { pageStart } from '../pagination.js'
import { tenantErrorResponses as errors } from '../responses.js'
import { Article, ArticleCreate, ArticleList, ArticleListQuery, ArticleParams, ArticleUpdate } from './schemas.js'
import { articleStore } from './store.js'

const articleNotFound = (id: number) => notFound(`Article ${id} not found`)

/** The articles API, served on every tenant host against that tenant's database only. */
export const articleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/articles', {
    schema: { tags: ['tenant'], operationId: 'listArticles', summary: 'List articles, newest first', querystring: ArticleListQuery, response: { 200: ArticleList, ...errors } }
  }, async (request) => {
    return await articleStore.page(request.db, request.query.limit, pageStart(request.query))
  })

  app.post('/articles', {
    schema: { tags: ['tenant'], operationId: 'createArticle', summary: 'Create an article', body: ArticleCreate, response: { 201: Article, ...errors } }
  }, async (request, reply) => {
    const article = await articleStore.create(request.db, request.body)
    return await reply.code(201).send(article)
  })

  app.get('/articles/:id', {
    schema: { tags: ['tenant'], operationId: 'getArticle', summary: 'Read an article', params: ArticleParams, response: { 200: Article, ...errors } }
  }, async (request) => {
    const article = await articleStore.get(request.db, request.params.id)
    if (article === null) throw articleNotFound(request.params.id)
    return article
  })

  app.patch('/articles/:id', {
    schema: { tags: ['tenant'], operationId: 'updateArticle', summary: 'Change an article', params: ArticleParams, body: ArticleUpdate, response: { 200: Article, ...errors } }
  }, async (request) => {
    const article = await articleStore.update(request.db, request.params.id, request.body)
    if (article === null) throw articleNotFound(request.params.id)
    return article
  })

  app.delete('/articles/:id', {
    schema: { tags: ['tenant'], operationId: 'deleteArticle', summary: 'Delete an article', params: ArticleParams, response: { 204: Type.Null(), ...errors } }
  }, async (request, reply) => {
    if (!(await articleStore.remove(request.db, request.params.id))) throw articleNotFound(request.params.id)
    return await reply.code(204).send(null)
  })
}
