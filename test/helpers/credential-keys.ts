import { createCipheriv, randomBytes, scryptSync } from 'node:crypto'
import { CredentialCipher } from '../../src/catalog/credential-cipher.js'
import type { Config } from '../../src/config.js'
import type { Silo } from '../../src/silo.js'
import { databaseUrl, testConfig } from './silo.js'

/** A fresh random key, recognisable in output if it ever leaks. */
export const newSecretKey = (label: string): string => `${label}-${randomBytes(16).toString('hex')}`

/** The key id Silo gives a SECRET_KEY. */
export const keyIdOf = (secret: string): string => new CredentialCipher({ current: secret }).keyId

/** A credential in the format Silo wrote before key ids (`v1:<iv>:<tag>:<ciphertext>`). */
export function sealV1 (plaintext: string, secret: string): string {
  const key = scryptSync(secret, 'silo/credentials/v1', 32)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(':')
}

export interface Keys {
  SECRET_KEY: string
  SECRET_KEY_PREVIOUS?: string
}

/** The environment of a process (CLI, server) on this silo's catalog with these keys; nothing inherited decides them. */
export function envFor (silo: Silo, keys: Keys, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl(),
    CATALOG_DATABASE: silo.config.catalogDatabase,
    TENANT_DB_PREFIX: silo.config.tenantDbPrefix,
    TENANT_SPARES: '0',
    LOG_LEVEL: 'silent',
    // Empty counts as unset: the caller's shell must not add a previous key.
    SECRET_KEY_PREVIOUS: '',
    ...keys,
    ...extra
  }
}

/** The config of another instance on this silo's catalog, holding these keys. */
export function configFor (silo: Silo, keys: Keys, overrides: Partial<Config> = {}): Config {
  // The core's settings of `silo`; the rest (HTTP, CLI) the test defaults.
  return { ...testConfig(), ...silo.config, secretKey: keys.SECRET_KEY, secretKeyPrevious: keys.SECRET_KEY_PREVIOUS, ...overrides }
}

/** Stored credentials by slug, as the catalog holds them. */
export async function storedCredentials (silo: Silo): Promise<Record<string, string>> {
  const rows = await silo.catalog.knex('tenants').orderBy('slug').select('slug', 'db_password') as Array<{ slug: string, db_password: string }>
  return Object.fromEntries(rows.map((row) => [row.slug, row.db_password]))
}

export async function catalogKeyId (silo: Silo): Promise<string | null> {
  const row = await silo.catalog.knex('catalog_identity').first('key_id') as { key_id: string | null }
  return row.key_id
}

/** Overwrites a tenant's stored credential (the catalog's triggers run as for any write). */
export async function storeCredential (silo: Silo, slug: string, sealed: string): Promise<void> {
  await silo.catalog.knex('tenants').where({ slug }).update({ db_password: sealed })
}
