import type { Knex } from 'knex'
import { SiloError } from '../errors.js'
import type { SiloEvents } from '../events.js'
import { CredentialCipher, CredentialUndecryptable, type CredentialKeys } from './credential-cipher.js'

/**
 * The key the catalog's tenant credentials are encrypted with. The catalog records its id
 * (`catalog_identity.key_id`); a process must hold that key, as SECRET_KEY or during a rotation
 * as SECRET_KEY_PREVIOUS, or it refuses to start: a wrong key is a configuration error, never a
 * fleet of tenants that all answer 503. New credentials are sealed with the catalog's key, so
 * every credential is always under the one key the catalog names (a database trigger refuses
 * any other), and `tenants rekey` moves them all to SECRET_KEY in one transaction.
 */

const ROTATE = 'Start with the key they were stored with; to change keys, set SECRET_KEY to the new key and SECRET_KEY_PREVIOUS to the old one and run `tenants rekey`.'

function keyMismatch (cipher: CredentialCipher, what: string): SiloError {
  return new SiloError('CONFIG_INVALID',
    `SECRET_KEY does not match the key the tenant credentials in this catalog were stored with (${what}; this process has ${cipher.describeKeys()}). ${ROTATE}`)
}

/**
 * Derives the keys, checks them against the catalog (recording its key id the first time)
 * and returns the cipher, set to seal with the catalog's key. Throws CONFIG_INVALID, naming key
 * ids only, when the catalog's credentials are under a key this process does not hold.
 */
export async function openCredentialCipher (catalog: Knex, keys: CredentialKeys): Promise<CredentialCipher> {
  const cipher = new CredentialCipher(keys)
  await adoptCatalogKey(catalog, cipher)
  return cipher
}

/**
 * The start check. A catalog with no key id yet (made before key ids) gets one: with no tenants
 * SECRET_KEY's; else the key that decrypts the stored credentials (SECRET_KEY_PREVIOUS's if any
 * still need it), and none decrypting is a wrong key. The identity row is locked for the check,
 * so concurrent first starts with different keys cannot record two ids: the second sees the first's.
 */
export async function adoptCatalogKey (catalog: Knex, cipher: CredentialCipher): Promise<string> {
  const keyId = await catalog.transaction(async (trx) => {
    const identity = await trx('catalog_identity').forUpdate().first('key_id') as { key_id: string | null } | undefined
    if (identity === undefined) throw new Error('the catalog has no identity row (catalog_identity)')
    if (identity.key_id !== null) return identity.key_id
    const adopted = await keyOfStoredCredentials(trx, cipher)
    await trx('catalog_identity').update({ key_id: adopted })
    return adopted
  })
  if (!cipher.holds(keyId)) throw keyMismatch(cipher, `key id ${keyId}`)
  cipher.useForWriting(keyId)
  return keyId
}

async function keyOfStoredCredentials (trx: Knex.Transaction, cipher: CredentialCipher): Promise<string> {
  const sealed = [...await trx('tenants').pluck('db_password') as string[], ...await trx('servers').whereNotNull('admin_url').pluck('admin_url') as string[]]
  if (sealed.length === 0) return cipher.keyId
  const used = new Set<string>()
  for (const credential of sealed) {
    try {
      used.add(cipher.open(credential).keyId)
    } catch (error) {
      // One damaged credential does not decide the catalog's key; the others do.
      if (!(error instanceof CredentialUndecryptable)) throw error
    }
  }
  if (used.size === 0) throw keyMismatch(cipher, `none of its ${sealed.length} stored credentials decrypts`)
  const previous = cipher.previousKeyId
  return previous !== undefined && used.has(previous) ? previous : cipher.keyId
}

/**
 * What a running process does when the catalog feed says the credentials' key changed (or tells
 * it the key on (re)connecting): seal with the new key if it holds it; if not, its cached
 * tenants keep working (a rekey does not change passwords) but it can read no credential
 * again, so it says so once with a `catalog:key` event (`held: false`) for the operator.
 */
export function catalogKeyFollower (cipher: CredentialCipher, events: SiloEvents): (keyId: string | null) => void {
  let known = cipher.writeKeyId
  return (keyId) => {
    if (keyId === null || keyId === known) return
    known = keyId
    const held = cipher.holds(keyId)
    if (held) cipher.useForWriting(keyId)
    events.emit('catalog:key', { keyId, held })
  }
}

export interface RekeyResult {
  /** The key id of SECRET_KEY: every credential is under it after a successful rekey. */
  keyId: string
  /** The catalog's key id before. */
  previousKeyId: string | null
  tenants: number
  /** Registered servers with an admin URL of their own (all but `default`): theirs are re-encrypted too. */
  servers: number
  /** Credentials re-encrypted: tenants' and servers' admin URLs. */
  reencrypted: number
  /** Tenants (by slug) and servers (`server <name>`) whose credential decrypts with neither key: when there is any, nothing changed. */
  failed: Array<{ slug: string, reason: string }>
  changed: boolean
}

/**
 * Re-encrypts every stored credential with SECRET_KEY and records its key id, in one catalog
 * transaction holding the tenants table against writes (reads go on). If any credential
 * decrypts with no key held, nothing changes. Running it again changes nothing.
 *
 * The rows are rewritten with `silo.rekey` set, which keeps them out of the change feed (the
 * passwords are the same, so no instance has a cached tenant to drop); the key id's change is
 * announced instead, once, when the transaction commits.
 */
export async function rekeyCatalog (catalog: Knex, cipher: CredentialCipher): Promise<RekeyResult> {
  return await catalog.transaction(async (trx) => {
    await trx.raw('select set_config(\'silo.rekey\', \'on\', true)')
    await trx.raw('lock table tenants, servers in exclusive mode')
    const identity = await trx('catalog_identity').forUpdate().first('key_id') as { key_id: string | null } | undefined
    if (identity === undefined) throw new Error('the catalog has no identity row (catalog_identity)')
    const failed: RekeyResult['failed'] = []
    const reseal = (rows: Array<{ id: string, label: string, sealed: string }>): { ids: string[], sealed: string[] } => {
      const ids: string[] = []
      const sealed: string[] = []
      for (const row of rows) {
        try {
          const resealed = cipher.resealed(row.sealed)
          if (resealed === undefined) continue
          ids.push(row.id)
          sealed.push(resealed)
        } catch (error) {
          if (!(error instanceof CredentialUndecryptable)) throw error
          failed.push({ slug: row.label, reason: error.message })
        }
      }
      return { ids, sealed }
    }
    const tenantRows = await trx('tenants').orderBy('slug').select('id', 'slug as label', 'db_password as sealed') as Array<{ id: string, label: string, sealed: string }>
    const serverRows = await trx('servers').whereNotNull('admin_url').orderBy('name')
      .select('id', trx.raw('\'server \' || name as label'), 'admin_url as sealed') as Array<{ id: string, label: string, sealed: string }>
    const tenants = reseal(tenantRows)
    const servers = reseal(serverRows)
    const reencrypted = tenants.ids.length + servers.ids.length
    const result = { keyId: cipher.keyId, previousKeyId: identity.key_id, tenants: tenantRows.length, servers: serverRows.length, failed }
    if (failed.length > 0 || (reencrypted === 0 && identity.key_id === cipher.keyId)) {
      return { ...result, reencrypted: 0, changed: false }
    }
    // The key id first: the triggers on tenants and servers accept only credentials under the catalog's key.
    await trx('catalog_identity').update({ key_id: cipher.keyId })
    if (tenants.ids.length > 0) {
      await trx.raw(`update tenants set db_password = given.sealed
        from unnest(?::uuid[], ?::text[]) as given (id, sealed) where tenants.id = given.id`, [tenants.ids, tenants.sealed])
    }
    if (servers.ids.length > 0) {
      await trx.raw(`update servers set admin_url = given.sealed
        from unnest(?::uuid[], ?::text[]) as given (id, sealed) where servers.id = given.id`, [servers.ids, servers.sealed])
    }
    return { ...result, reencrypted, changed: true }
  })
}
