import { assertIdentifier } from '../db/identifiers.js'
import { normalizeDomain } from '../tenancy/host.js'
import { validationFailed } from '../errors.js'

export const SLUG_PATTERN = /^[a-z][a-z0-9-]{1,39}$/

export function assertSlug (slug: string): string {
  if (!SLUG_PATTERN.test(slug)) {
    throw validationFailed(`Invalid slug ${JSON.stringify(slug.slice(0, 60))}: use 2-40 characters a-z, 0-9 and -, starting with a letter`)
  }
  return slug
}

export function assertDomain (domain: string): string {
  const host = normalizeDomain(domain)
  if (host === null) throw validationFailed(`Invalid domain ${JSON.stringify(domain.slice(0, 80))}: expected a DNS host name without port`)
  return host
}

/** A domain a tenant may claim: a valid host name, and not one of the reserved hosts (the admin host). */
export function claimableDomain (domain: string, reservedHosts: readonly string[] = []): string {
  const host = assertDomain(domain)
  if (reservedHosts.includes(host)) throw validationFailed(`Domain ${host} is reserved`)
  return host
}

/** A tenant's display name (the slug when none is given), trimmed: 1-200 characters, no NUL. */
export function assertTenantName (name: string | undefined, slug: string): string {
  const trimmed = (name ?? slug).trim()
  if (trimmed.length === 0 || trimmed.length > 200 || trimmed.includes('\u0000')) throw validationFailed('Name must be 1-200 characters, without NUL')
  return trimmed
}

/** Database and role name of a tenant: the prefix plus the slug, `-` becoming `_` (slugs have no `_`). */
export function tenantDatabaseName (prefix: string, slug: string): string {
  return assertIdentifier(`${prefix}${assertSlug(slug).replaceAll('-', '_')}`, 'database name')
}
