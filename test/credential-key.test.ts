import type { LightMyRequestResponse } from 'fastify'
import knex from 'knex'
import t from './helpers/tap.js'
import { buildApp } from '../src/app.js'
import { adoptCatalogKey } from '../src/catalog/catalog-key.js'
import { CredentialCipher, CredentialUndecryptable } from '../src/catalog/credential-cipher.js'
import { createLogger } from '../src/logger.js'
import { openSilo, type Silo } from '../src/silo.js'
import { migrateFleet } from '../src/lifecycle/fleet-migrator.js'
import { countWaitingBackends } from '../src/testing/backends.js'
import { runCli } from './helpers/cli.js'
import {
  catalogKeyId, configFor, envFor, keyIdOf, newSecretKey, sealV1, storeCredential, storedCredentials, type Keys
} from './helpers/credential-keys.js'
import { spawnServer } from './helpers/server.js'
import { createTenant, testConfig, testSilo, type Teardown } from './helpers/silo.js'
import { eventually } from './helpers/wait.js'

const RIGHT_KEY = newSecretKey('right-key')
const WRONG_KEY = newSecretKey('wrong-key')
const OTHER_KEY = newSecretKey('other-key')
const ALL_KEYS = [RIGHT_KEY, WRONG_KEY, OTHER_KEY]

const MISMATCH = /^SECRET_KEY does not match the key the tenant credentials in this catalog were stored with \(.*\)\. Start with the key they were stored with; to change keys, .*`tenants rekey`\.$/

const leaks = (text: string): string[] => ALL_KEYS.filter((key) => text.includes(key))

/** Why `open` failed: the reason and the key id it names, or 'none' when it did not fail. */
function failure (open: () => unknown): string {
  try {
    open()
    return 'none'
  } catch (error) {
    if (!(error instanceof CredentialUndecryptable)) throw error
    return [error.reason, error.keyId].filter((part) => part !== undefined).join(' ')
  }
}

/** Another instance on the catalog of `silo` with these keys; closed in teardown. */
async function openWith (t: Teardown, silo: Silo, keys: Keys, overrides: Parameters<typeof configFor>[2] = {}): Promise<Silo> {
  const other = await openSilo(configFor(silo, keys, overrides))
  t.teardown(async () => { await other.close() })
  return other
}

t.test('credentials are sealed as v2 with the id of the key; v1 and both keys of a rotation still open', async (t) => {
  const cipher = new CredentialCipher({ current: RIGHT_KEY, previous: OTHER_KEY })
  const sealed = cipher.encrypt('hunter2')
  t.match(sealed, new RegExp(`^v2:${keyIdOf(RIGHT_KEY)}:[\\w-]+:[\\w-]+:[\\w-]+$`))
  t.notOk(sealed.includes('hunter2'))
  t.equal(keyIdOf(RIGHT_KEY).length, 12, 'a short id')
  t.not(keyIdOf(RIGHT_KEY), keyIdOf(OTHER_KEY))
  t.equal(cipher.decrypt(sealV1('old', RIGHT_KEY)), 'old', 'v1 under SECRET_KEY')
  t.equal(cipher.decrypt(sealV1('older', OTHER_KEY)), 'older', 'v1 under SECRET_KEY_PREVIOUS')
  t.same(cipher.open(new CredentialCipher({ current: OTHER_KEY }).encrypt('x')), { plaintext: 'x', keyId: keyIdOf(OTHER_KEY) })
  const alone = new CredentialCipher({ current: RIGHT_KEY })
  t.equal(failure(() => alone.decrypt(sealV1('x', WRONG_KEY))), 'no-key-fits')
  t.equal(failure(() => alone.decrypt(new CredentialCipher({ current: WRONG_KEY }).encrypt('x'))), `unknown-key ${keyIdOf(WRONG_KEY)}`)
  const [v, kid, iv, tag, ct] = sealed.split(':') as [string, string, string, string, string]
  t.equal(failure(() => cipher.decrypt([v, kid, iv, tag.slice(0, 8), ct].join(':'))), `damaged ${kid}`, 'a shortened tag is refused')
  t.equal(failure(() => cipher.decrypt('plain text')), 'malformed')
})

t.test('a server or CLI started with another SECRET_KEY than the credentials were stored with refuses to start, and says what to do', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: RIGHT_KEY })
  await createTenant(silo, 'acme')

  await t.rejects(openSilo(configFor(silo, { SECRET_KEY: WRONG_KEY })), { code: 'CONFIG_INVALID', message: MISMATCH }, 'openSilo refuses')

  const server = spawnServer(t, envFor(silo, { SECRET_KEY: WRONG_KEY }, { LOG_LEVEL: 'info' }))
  const listening = await Promise.race([server.listening(60000).catch(() => null), server.exited.then(() => null)])
  if (listening !== null) await server.stop()
  t.equal(listening, null, 'the server never listened')
  t.equal((await server.exited).code, 1)
  const stderr = server.stderr().trim()
  t.equal(stderr.split('\n').length, 1, 'one line')
  t.match(stderr.replace(/^silo: /, ''), MISMATCH)
  t.match(stderr, `key id ${keyIdOf(RIGHT_KEY)}`, 'names the id of the key the catalog needs')
  t.same(leaks(server.stdout() + server.stderr()), [], 'no key printed')

  for (const args of [['migrate', '--all'], ['list']]) {
    const cli = await runCli(args, envFor(silo, { SECRET_KEY: WRONG_KEY }))
    t.equal(cli.code, 1, `tenants ${args.join(' ')} exits 1`)
    t.match(cli.stderr.trim().replace(/^tenants: /, ''), MISMATCH)
    t.same(leaks(cli.stdout + cli.stderr), [], 'no key printed')
  }

  const right = await runCli(['migrate', '--all'], envFor(silo, { SECRET_KEY: RIGHT_KEY }))
  t.equal(right.code, 0, 'the right key works')
})

t.test('a catalog from before key ids is adopted with the key its credentials decrypt with, and refused with another', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: RIGHT_KEY })
  await createTenant(silo, 'acme', { seed: true })
  await createTenant(silo, 'globex')
  // As an older Silo left it: v1 credentials, no key id.
  for (const slug of ['acme', 'globex']) {
    const password = (await silo.catalog.tenantBySlug(slug))?.database.password ?? ''
    await storeCredential(silo, slug, sealV1(password, RIGHT_KEY))
  }
  await silo.catalog.knex('catalog_identity').update({ key_id: null })

  await t.rejects(openSilo(configFor(silo, { SECRET_KEY: WRONG_KEY })),
    { code: 'CONFIG_INVALID', message: /none of its 2 stored credentials decrypts/ }, 'a wrong key is refused')
  t.equal(await catalogKeyId(silo), null, 'and records nothing')

  const adopted = await openWith(t, silo, { SECRET_KEY: RIGHT_KEY })
  t.equal(await catalogKeyId(silo), keyIdOf(RIGHT_KEY), 'the right key is recorded')
  const app = await buildApp(adopted, { config: testConfig() })
  t.teardown(async () => { await app.close() })
  const res = await app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  t.equal(res.statusCode, 200, 'and serves')
  t.ok(res.json().items.length > 0)

  await t.rejects(openSilo(configFor(silo, { SECRET_KEY: WRONG_KEY })), { code: 'CONFIG_INVALID', message: MISMATCH }, 'once recorded, a wrong key is still refused')

  t.test('a rotation under way (SECRET_KEY new, SECRET_KEY_PREVIOUS the stored one) records the stored key and seals with it', async (t) => {
    await silo.catalog.knex('catalog_identity').update({ key_id: null })
    const rotating = await openWith(t, silo, { SECRET_KEY: OTHER_KEY, SECRET_KEY_PREVIOUS: RIGHT_KEY })
    t.equal(await catalogKeyId(silo), keyIdOf(RIGHT_KEY))
    await createTenant(rotating, 'initech')
    t.match((await storedCredentials(silo)).initech, new RegExp(`^v2:${keyIdOf(RIGHT_KEY)}:`), 'so an instance with only the old key reads it too')
    t.equal((await silo.catalog.tenantBySlug('initech'))?.status, 'active')
  })
})

t.test('concurrent first starts with different keys on an empty catalog record one key id; the other is refused', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: RIGHT_KEY })
  await silo.catalog.knex('catalog_identity').update({ key_id: null })
  // Two connections of their own, so both starts really run at once.
  const connect = (): ReturnType<typeof knex> => knex({ client: 'pg', connection: silo.catalog.knex.client.config.connection, pool: { min: 0, max: 1 } })
  const [a, b, holder] = [connect(), connect(), connect()]
  t.teardown(async () => { await Promise.all([a.destroy(), b.destroy(), holder.destroy()]) })

  // Both starts reach the identity row while it is held, then race for it when it is let go.
  let release = (): void => {}
  let locked = (): void => {}
  const isLocked = new Promise<void>((resolve) => { locked = resolve })
  const held = holder.transaction(async (trx) => {
    await trx('catalog_identity').update({ objects_marked_at: trx.raw('objects_marked_at') })
    await new Promise<void>((resolve) => { release = resolve; locked() })
  })
  await isLocked
  const keys = [new CredentialCipher({ current: RIGHT_KEY }), new CredentialCipher({ current: OTHER_KEY })]
  const starts = Promise.allSettled([adoptCatalogKey(a, keys[0] as CredentialCipher), adoptCatalogKey(b, keys[1] as CredentialCipher)])
  const waiting = async (): Promise<number> => await countWaitingBackends(silo.catalog.knex, { database: silo.config.catalogDatabase, waitEventType: 'Lock' })
  await eventually(async () => await waiting() >= 2, 30000, 20)
  t.equal(await waiting(), 2, 'both starts wait on the identity row')
  release()
  await held
  const results = await starts
  const won = results.filter((result) => result.status === 'fulfilled')
  const refused = results.filter((result) => result.status === 'rejected')
  t.equal(won.length, 1, 'one start records its key')
  t.equal(refused.length, 1, 'the other is refused')
  t.match((refused[0] as PromiseRejectedResult).reason, { code: 'CONFIG_INVALID', message: MISMATCH })
  t.equal(await catalogKeyId(silo), (won[0] as PromiseFulfilledResult<string>).value, 'the catalog holds the winner\'s key id')
})

t.test('a credential that cannot be decrypted makes that tenant 503 TENANT_UNAVAILABLE, never a catalog outage; the others keep serving', async (t) => {
  const captured: string[] = []
  const silo = await testSilo(t, { SECRET_KEY: RIGHT_KEY, HOST_CACHE_TTL_MS: 600000 })
  const app = await buildApp(silo, { config: testConfig(), logger: createLogger('info', { write: (line: string) => { captured.push(line) } }) })
  t.teardown(async () => { await app.close() })
  await createTenant(silo, 'acme', { seed: true })
  await createTenant(silo, 'globex', { seed: true })
  const get = async (host: string): Promise<LightMyRequestResponse> => await app.inject({ url: '/articles', headers: { host } })
  t.equal((await get('acme.test')).statusCode, 200, 'acme is served (and cached)')

  // As if acme's credential had been stored by a process with another key.
  const password = (await silo.catalog.tenantBySlug('acme'))?.database.password ?? ''
  await storeCredential(silo, 'acme', sealV1(password, WRONG_KEY))
  await silo.syncCatalog()

  const outcomes: string[] = []
  silo.events.on('request:tenant', ({ outcome }) => { outcomes.push(outcome) })
  const res = await get('acme.test')
  t.same(outcomes, ['unavailable'], 'counted as the tenant unavailable, not the catalog')
  t.equal(res.statusCode, 503, 'acme is refused as soon as the feed announced the change')
  t.same(res.json(), { statusCode: 503, code: 'TENANT_UNAVAILABLE', error: 'Service Unavailable', message: 'The tenant database is unavailable' })
  t.equal(res.headers['retry-after'], '5')
  t.equal((await get('globex.test')).statusCode, 200, 'globex is served')

  const logged = captured.map((line) => JSON.parse(line) as { code?: string, err?: { message?: string } }).filter((line) => line.code === 'TENANT_UNAVAILABLE')
  t.equal(logged.length, 1)
  t.match(logged[0]?.err?.message, /^The credential of tenant acme cannot be decrypted: it was encrypted \(format v1\) with none of the keys this process holds \(SECRET_KEY \(key id [\w-]{12}\)\)$/, 'the log says why')
  t.same(leaks(captured.join('\n')).concat(captured.join('\n').includes(password) ? ['password'] : []), [], 'no key or password in the log')

  const misses = silo.resolver.stats().misses
  t.equal((await get('acme.test')).statusCode, 503)
  t.equal(silo.resolver.stats().misses, misses, 'the failure is remembered: no catalog query per request')

  const fleet = await migrateFleet(silo.catalog, silo.migrator, ['acme', 'globex'], { concurrency: 2 })
  t.match(fleet, [
    { slug: 'acme', status: 'failed', error: /credential of tenant acme cannot be decrypted/ },
    { slug: 'globex', status: 'up-to-date' }
  ], 'a fleet run fails that tenant alone, and says why')

  await silo.provisioner.setStatus('acme', 'suspended')
  t.equal((await get('acme.test')).statusCode, 403, 'a suspension still takes effect')

  t.test('a credential sealed under another key id is refused by the catalog itself', async (t) => {
    await t.rejects(storeCredential(silo, 'globex', new CredentialCipher({ current: WRONG_KEY }).encrypt('x')), /sealed with key id .* but the catalog's credentials are under key id/)
  })

  await silo.provisioner.drop('acme')
  t.equal((await get('acme.test')).statusCode, 404, 'and the tenant can still be dropped')

  t.test('nor, without the catalog feed, is a cached record served once its TTL has run out, though nothing announced a change', async (t) => {
    // With the feed, held answers do not expire: a rekey keeps every password, so a record held is still right.
    const other = await openSilo(configFor(silo, { SECRET_KEY: RIGHT_KEY }, { hostCacheTtlMs: 20 }), { listen: false })
    t.teardown(async () => { await other.close() })
    const otherApp = await buildApp(other, { config: testConfig() })
    t.teardown(async () => { await otherApp.close() })
    t.equal((await otherApp.inject({ url: '/articles', headers: { host: 'globex.test' } })).statusCode, 200)
    // Rewritten as a rekey by a key this instance lacks would do it: without a change notification.
    const password = (await silo.catalog.tenantBySlug('globex'))?.database.password ?? ''
    await silo.catalog.knex.transaction(async (trx) => {
      await trx.raw('select set_config(\'silo.rekey\', \'on\', true)')
      await trx('tenants').where({ slug: 'globex' }).update({ db_password: sealV1(password, WRONG_KEY) })
    })
    await eventually(() => other.resolver.cached('globex.test') === undefined, 30000, 10)
    t.equal(other.resolver.cached('globex.test'), undefined, 'the cached answer has expired (it is kept, stale)')
    const res = await otherApp.inject({ url: '/articles', headers: { host: 'globex.test' } })
    t.equal(res.statusCode, 503, 'the stale record is not served')
    t.equal(res.json().code, 'TENANT_UNAVAILABLE')
  })
})
