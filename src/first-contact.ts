import type { FastifyRequest } from 'fastify'
import { hostInvalid, SiloError, tenantNotFound } from './errors.js'
import { isIpLiteral, portOf } from './tenancy/host.js'

/** Paths that exist on the admin host only: `/docs`, `/docs/...`, `/tenants...`, `/metrics`, `/console...`. */
const ADMIN_PATH = /^\/(?:docs|tenants|metrics|console)(?:[/?]|$)/

/** 'd', 't', 'm' and 'c': a path starting otherwise is no admin path, without running the expression. */
const isAdminPath = (url: string): boolean => {
  const second = url.charCodeAt(1)
  return (second === 0x64 || second === 0x74 || second === 0x6d || second === 0x63) && ADMIN_PATH.test(url)
}

/**
 * The errors the tenancy plugin answers a malformed or unknown host with, saying where to go
 * when the request looks like someone's first try: `http://127.0.0.1:3000/docs` (Silo routes by
 * host name) or `http://localhost:3000/docs` (the docs live on the admin host). Codes and statuses
 * are the contract's; only the message says more. They are made only for refused requests, and
 * a flood of unknown hosts asking for tenant paths gets the plain message after one character test.
 */
export function firstContactErrors (adminHost: string): {
  hostInvalid: (request: FastifyRequest) => Error
  tenantNotFound: (host: string, request: FastifyRequest) => Error
} {
  // The port the client used, so the link works as typed (Silo itself speaks plain HTTP).
  const docsUrl = (header: string): string => `http://${adminHost}${portOf(header)}/docs`
  return {
    hostInvalid: (request) => {
      const header = request.headers.host
      if (header === undefined || !isIpLiteral(header)) return hostInvalid()
      return hostInvalid(`Silo routes requests by host name, and ${header} is an IP address. ` +
        `Tenants are served on their own domains; the admin API and the API docs on the admin host ${adminHost}: ${docsUrl(header)}`)
    },
    tenantNotFound: (host, request) => {
      if (!isAdminPath(request.url)) return tenantNotFound(host)
      return new SiloError('TENANT_NOT_FOUND', `No tenant is served at ${host}. ` +
        `The admin API (/tenants, /metrics), the API docs (/docs) and the console (/console) are served on the admin host ${adminHost}: ${docsUrl(request.headers.host ?? '')}`)
    }
  }
}
