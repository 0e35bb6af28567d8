import { Type, type Static } from '@sinclair/typebox'
import { SERVER_STATUSES } from '../catalog/server-store.js'
import type { ServerState } from '../lifecycle/server-registry.js'

const ServerName = Type.String({ pattern: '^[a-z][a-z0-9-]{1,39}$', description: '2-40 characters a-z, 0-9 and -, starting with a letter' })

/**
 * The one public shape of a server, for the admin API and the CLI's `--json` alike: never its
 * admin URL (it holds a password), ISO dates, and what a probe found just now.
 */
export const ServerView = Type.Object({
  name: Type.String(),
  status: Type.Union(SERVER_STATUSES.map((status) => Type.Literal(status))),
  tenants: Type.Integer({ description: 'tenants placed on it' }),
  maxTenants: Type.Union([Type.Integer(), Type.Null()], { description: 'most tenants it takes (null: no limit)' }),
  weight: Type.Integer({ description: 'its share of new tenants against the others' }),
  connectionBudget: Type.Union([Type.Integer(), Type.Null()]),
  tenantHost: Type.Union([Type.String(), Type.Null()], { description: 'where tenant pools connect, when not the admin URL\'s host' }),
  tenantPort: Type.Union([Type.Integer(), Type.Null()]),
  serverVersion: Type.Union([Type.String(), Type.Null()], { description: 'PostgreSQL version last seen there' }),
  reachable: Type.Boolean({ description: 'whether it answered just now' }),
  tenantBackends: Type.Union([Type.Integer(), Type.Null()], { description: 'sessions open on its tenant databases (null: unreachable)' }),
  tenantBytes: Type.Union([Type.Integer(), Type.Null()], { description: 'total size of its tenant databases (null: unreachable)' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { title: 'Server' })
export type ServerView = Static<typeof ServerView>

export const ServerList = Type.Object({ items: Type.Array(ServerView) }, { title: 'ServerList' })

export const ServerAdd = Type.Object({
  name: ServerName,
  url: Type.String({ minLength: 1, maxLength: 2000, description: 'postgres://user:password@host:port/database of a role with CREATEDB and CREATEROLE; stored encrypted, never shown again' }),
  tenantHost: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  tenantPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  maxTenants: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })),
  weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  budget: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'most connections to its tenant databases' }))
}, { additionalProperties: false, title: 'ServerAdd' })
export type ServerAdd = Static<typeof ServerAdd>

export const ServerParams = Type.Object({ name: ServerName })

export const serverView = ({ server, reachable, tenantBackends, tenantBytes }: ServerState): ServerView => ({
  name: server.name,
  status: server.status,
  tenants: server.tenants,
  maxTenants: server.maxTenants,
  weight: server.weight,
  connectionBudget: server.connectionBudget,
  tenantHost: server.tenantHost,
  tenantPort: server.tenantPort,
  serverVersion: server.serverVersion,
  reachable,
  tenantBackends,
  tenantBytes,
  createdAt: server.createdAt.toISOString(),
  updatedAt: server.updatedAt.toISOString()
})
