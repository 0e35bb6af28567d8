/**
 * Absolute locations of the migration and seed directories, whether Silo runs from its
 * TypeScript sources (tsx, tests) or from the compiled `dist/` tree: both keep the same
 * layout relative to this file, so nothing is resolved against the current directory.
 */
const projectRoot = new URL('../../', import.meta.url)

/** `.ts` when running from sources, `.js` when running the build. */
export const moduleExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'

export const catalogMigrationsDir = new URL('migrations/catalog/', projectRoot)
export const tenantMigrationsDir = new URL('migrations/tenant/', projectRoot)
export const tenantSeedsDir = new URL('seeds/tenant/', projectRoot)
