import { Type, type Static } from '@sinclair/typebox'
import { TENANT_STATUSES } from '../catalog/catalog-store.js'
import { ServerParams } from './servers.js'
import { NO_NUL } from './text.js'

const Slug = Type.String({ pattern: '^[a-z][a-z0-9-]{1,39}$', description: '2-40 characters a-z, 0-9 and -, starting with a letter' })
const Domain = Type.String({ minLength: 1, maxLength: 253, description: 'a DNS host name, no port' })

export const TenantCreate = Type.Object({
  slug: Slug,
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: NO_NUL })),
  domains: Type.Array(Domain, { minItems: 1, maxItems: 20, description: 'the first one is primary' }),
  seed: Type.Optional(Type.Boolean({ description: 'add demo articles' })),
  server: Type.Optional(Type.String({ pattern: ServerParams.properties.name.pattern, description: 'name of the server to put it on (GET /servers); placement chooses when left out' }))
}, { additionalProperties: false, title: 'TenantCreate' })
export type TenantCreate = Static<typeof TenantCreate>

export const TenantAttach = Type.Object({
  slug: Slug,
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: NO_NUL })),
  url: Type.String({ minLength: 1, maxLength: 2000, description: 'postgres://user:password@host:port/database of the database, logged in as the role its requests run as (not a superuser); stored encrypted, never shown again' }),
  domains: Type.Array(Domain, { minItems: 1, maxItems: 20, description: 'the first one is primary' }),
  migrate: Type.Optional(Type.Boolean({ default: true, description: 'run the tenant migrations there (409 SCHEMA_CONFLICT when its own tables conflict); false: its schema is its own, fleet migrations and the schema guard leave it alone' }))
}, { additionalProperties: false, title: 'TenantAttach' })
export type TenantAttach = Static<typeof TenantAttach>

export const TenantReattach = Type.Object({
  url: Type.String({ minLength: 1, maxLength: 2000, description: 'the new postgres:// URL of the attached database (a rotated password, a moved database); checked as attach checks it, stored encrypted, never shown again' })
}, { additionalProperties: false, title: 'TenantReattach' })

export const TenantDropQuery = Type.Object({
  dropDatabase: Type.Optional(Type.Boolean({ description: 'of an attached tenant: drop its database too (never its role); otherwise it is only detached' }))
}, { additionalProperties: false })

export const TenantView = Type.Object({
  slug: Type.String(),
  name: Type.String(),
  status: Type.Union(TENANT_STATUSES.map((status) => Type.Literal(status))),
  schemaVersion: Type.Union([Type.String(), Type.Null()]),
  database: Type.String(),
  server: Type.Union([Type.String(), Type.Null()], { description: 'the registered server its database is on (GET /servers/:name); null for an attached database on no registered server' }),
  attached: Type.Boolean({ description: 'a database Silo did not create (attach): dropping the tenant only detaches it, unless told to drop the database' }),
  schemaManaged: Type.Boolean({ description: 'false for an attached database with a schema of its own (migrate: false): Silo\'s migrations and schema guard leave it alone, so its schemaVersion (null) is neither behind nor missing' }),
  domains: Type.Array(Type.String()),
  primaryDomain: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { title: 'Tenant' })
export type TenantView = Static<typeof TenantView>

export const TenantList = Type.Object({
  items: Type.Array(TenantView),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'pass back as cursor for the next page; null on the last page' })
}, { title: 'TenantList' })

/** One page of the tenants list, in slug order: every filter given must hold. */
export const TenantListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'nextCursor of the previous page' })),
  status: Type.Optional(Type.Union(TENANT_STATUSES.map((status) => Type.Literal(status)))),
  server: Type.Optional(Type.String({ pattern: ServerParams.properties.name.pattern, description: 'tenants on this server (a name no server has: none)' })),
  search: Type.Optional(Type.String({ maxLength: 200, pattern: NO_NUL, description: 'a substring of the slug, the name or a domain, in any case; % and _ are plain characters' }))
}, { additionalProperties: false })
export type TenantListQuery = Static<typeof TenantListQuery>

export const SlugParams = Type.Object({ slug: Slug })
export const DomainParams = Type.Object({ slug: Slug, domain: Domain })
export const DomainBody = Type.Object({ domain: Domain }, { additionalProperties: false, title: 'DomainAdd' })
