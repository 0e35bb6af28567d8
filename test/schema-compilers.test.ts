import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import t from './helpers/tap.js'
import { buildRouteSerializer, routeValidatorCompiler } from '../src/schema-compilers.js'

// The routes' compilers (src/schema-compilers.ts): what one app compiled, another app of the same
// process reuses, per schema object, with each kind of request part keeping its own rules. No
// database: these are Fastify apps with a route of their own, driven through inject().

const Body = Type.Object({ n: Type.Integer() }, { additionalProperties: false })
const Query = Type.Object({ n: Type.Integer(), flag: Type.Boolean({ default: false }) })
const Reply = Type.Object({ n: Type.Integer(), label: Type.String() })

t.test('validators: one per schema object and kind of part, shared by the apps of a process', async (t) => {
  const first = routeValidatorCompiler()
  const second = routeValidatorCompiler()
  const body = first({ schema: Body, method: 'POST', url: '/', httpPart: 'body' })
  t.equal(second({ schema: Body, method: 'POST', url: '/other', httpPart: 'body' }), body, 'the second app gets the first app\'s body validator')
  const query = second({ schema: Body, method: 'GET', url: '/', httpPart: 'querystring' })
  t.not(query, body, 'the same schema as a query string gets a validator with the query string\'s rules')
  t.equal(first({ schema: Body, method: 'GET', url: '/', httpPart: 'params' }), query, 'params and query strings share the coercing validator')

  // The rules stay each part's own: bodies are not coerced, query strings are.
  t.equal(body({ n: '1' }), false, 'a body with text for an integer is refused')
  const text = { n: '1' }
  t.equal(query(text), true, 'a query string\'s text is coerced')
  t.same(text, { n: 1 })

  const inline = Type.Object({ n: Type.Integer() })
  t.not(second({ schema: inline, method: 'POST', url: '/', httpPart: 'body' }), body, 'an equal schema that is another object is compiled on its own')
  const always = first({ schema: true as unknown as object, method: 'POST', url: '/', httpPart: 'body' })
  t.equal(always('anything'), true, 'a boolean schema is compiled as it is')
})

t.test('serializers: one per schema object when the app has no shared schemas', async (t) => {
  const route = { method: 'GET', url: '/', httpStatus: '200', schema: Reply }
  const serialize = buildRouteSerializer({}, undefined)(route)
  t.equal(buildRouteSerializer({}, undefined)({ ...route, url: '/other' }), serialize, 'another app\'s serializer of the same schema is the same function')
  t.equal(serialize({ n: 2, label: 'two', secret: 'x' }), '{"n":2,"label":"two"}', 'it writes what the schema names and nothing else')
  t.not(buildRouteSerializer({ Other: { $id: 'Other', type: 'string' } }, undefined)(route), serialize, 'an app with shared schemas compiles its own')
  t.not(buildRouteSerializer({}, { rounding: 'ceil' })(route), serialize, 'an app with serializer options compiles its own')
})

t.test('two apps built on the same routes answer alike', async (t) => {
  const build = async () => {
    const app = Fastify({ schemaController: { compilersFactory: { buildSerializer: buildRouteSerializer } } })
    app.setValidatorCompiler(routeValidatorCompiler())
    app.post('/items', { schema: { body: Body, querystring: Query, response: { 200: Reply } } }, async (request) => {
      const body = request.body as { n: number }
      const query = request.query as { n: number, flag: boolean }
      return { n: body.n + query.n, label: `flag ${String(query.flag)}`, extra: 'dropped' }
    })
    await app.ready()
    t.teardown(async () => { await app.close() })
    return app
  }
  for (const app of [await build(), await build()]) {
    const ok = await app.inject({ method: 'POST', url: '/items?n=2', payload: { n: 1 } })
    t.equal(ok.statusCode, 200)
    t.same(ok.json(), { n: 3, label: 'flag false' }, 'the query string is coerced and defaulted, the reply serialized by its schema')
    const refused = await app.inject({ method: 'POST', url: '/items?n=2', payload: { n: '1' } })
    t.equal(refused.statusCode, 400, 'a body with text for an integer is refused')
    const extra = await app.inject({ method: 'POST', url: '/items?n=2', payload: { n: 1, more: true } })
    t.equal(extra.statusCode, 400, 'a body with a key its schema does not name is refused')
  }
})
