import { SerializerSelector, type SerializerCompiler, type SerializerFactory } from '@fastify/fast-json-stringify-compiler'
import type { FastifySchemaCompiler } from 'fastify'
import { Ajv, type ValidateFunction } from 'ajv'

/**
 * The compilers of the routes' schemas. Fastify compiles every route's validators (Ajv) and
 * response serializers (fast-json-stringify) each time an app is built, with compilers of that
 * app's own; a process that builds several apps over the same routes (every test file, an
 * application that embeds Silo and rebuilds its app) compiled the same schemas again each time:
 * a fifth of a second an app. The compiled functions depend on nothing but the schema and the
 * compiler's settings, which are fixed here, so they are kept per schema object, weakly: a
 * schema made per app (one written inline in a plugin, the lower-cased copy Fastify makes of a
 * headers schema) goes with its app, and one declared once in a module is compiled once.
 */

/**
 * Bodies are validated strictly (no type coercion, unknown keys rejected); query strings and
 * path parameters arrive as text, so they are coerced to the schema's types.
 */
function validatorCompilers (): { body: Ajv, other: Ajv } {
  const base = { allErrors: false, useDefaults: true, strict: false }
  return {
    body: new Ajv({ ...base, coerceTypes: false, removeAdditional: false }),
    other: new Ajv({ ...base, coerceTypes: 'array', removeAdditional: true })
  }
}

const validators = { body: new WeakMap<object, ValidateFunction>(), other: new WeakMap<object, ValidateFunction>() }

/** The validator compiler of one app: schemas this process compiled before are not compiled again. */
export function routeValidatorCompiler (): FastifySchemaCompiler<unknown> {
  let ajv: { body: Ajv, other: Ajv } | undefined
  return ({ schema, httpPart }) => {
    const which = httpPart === 'body' ? 'body' : 'other'
    if (typeof schema !== 'object' || schema === null) return (ajv ??= validatorCompilers())[which].compile(schema as boolean)
    let validate = validators[which].get(schema)
    if (validate === undefined) {
      validate = (ajv ??= validatorCompilers())[which].compile(schema)
      validators[which].set(schema, validate)
    }
    return validate
  }
}

const buildDefaultSerializer = SerializerSelector()
const serializers = new WeakMap<object, ReturnType<SerializerCompiler>>()

/**
 * Fastify's own serializer factory (fast-json-stringify), with the compiled serializers kept
 * per schema object when the app has no shared schemas (`addSchema`) and no serializer options,
 * as Silo's apps have: then a serializer depends on its schema alone.
 */
export const buildRouteSerializer: SerializerFactory = (externalSchemas, options) => {
  const compile = buildDefaultSerializer(externalSchemas, options)
  const plain = options === undefined && (externalSchemas === undefined || externalSchemas === null || Object.keys(externalSchemas).length === 0)
  if (!plain) return compile
  return (route) => {
    const { schema } = route
    if (typeof schema !== 'object' || schema === null) return compile(route)
    let serialize = serializers.get(schema)
    if (serialize === undefined) {
      serialize = compile(route)
      serializers.set(schema, serialize)
    }
    return serialize
  }
}
