import t from './helpers/tap.js'
import type { FastifyInstance } from 'fastify'
import { openSilo, type Silo } from '../src/silo.js'
import type { SiloEventMap } from '../src/events.js'
import { runCli, spawnCli } from './helpers/cli.js'
import {
  catalogKeyId, configFor, envFor, keyIdOf, newSecretKey, sealV1, storeCredential, storedCredentials, type Keys
} from './helpers/credential-keys.js'
import { httpGet, spawnServer } from './helpers/server.js'
import { anotherInstance, createTenant, testSilo, type Teardown } from './helpers/silo.js'

const OLD_KEY = newSecretKey('old-key')
const NEW_KEY = newSecretKey('new-key')
const STRAY_KEY = newSecretKey('stray-key')
const ALL_KEYS = [OLD_KEY, NEW_KEY, STRAY_KEY]
const ROTATION: Keys = { SECRET_KEY: NEW_KEY, SECRET_KEY_PREVIOUS: OLD_KEY }

const leaks = (text: string): string[] => ALL_KEYS.filter((key) => text.includes(key))
type KeyEvent = SiloEventMap['catalog:key'][0]

/** An instance (core + HTTP app) on the catalog of `silo` with these keys; closed in teardown. */
async function instance (t: Teardown, silo: Silo, keys: Keys): Promise<{ silo: Silo, app: FastifyInstance, keyEvents: KeyEvent[] }> {
  // A long TTL: a cached tenant is dropped only when the feed says so.
  const { silo: other, app } = await anotherInstance(t, configFor(silo, keys, { hostCacheTtlMs: 600000 }))
  const keyEvents: KeyEvent[] = []
  other.events.on('catalog:key', (event) => { keyEvents.push(event) })
  return { silo: other, app, keyEvents }
}

const articles = async (app: FastifyInstance, host: string): Promise<number> =>
  (await app.inject({ url: '/articles', headers: { host } })).statusCode

t.test('rekey moves every credential to the new key while the fleet serves; instances hear of it through the feed', async (t) => {
  const origin = await testSilo(t, { SECRET_KEY: OLD_KEY })
  await createTenant(origin, 'acme', { seed: true })
  await createTenant(origin, 'globex', { seed: true })
  // Credentials stored before key ids are rekeyed as well.
  await storeCredential(origin, 'globex', sealV1((await origin.catalog.tenantBySlug('globex'))?.database.password ?? '', OLD_KEY))

  const oldOnly = await instance(t, origin, { SECRET_KEY: OLD_KEY })
  const rotating = await instance(t, origin, ROTATION)
  for (const { app } of [oldOnly, rotating]) {
    t.equal(await articles(app, 'acme.test'), 200, 'acme is served before')
    t.equal(await articles(app, 'globex.test'), 200, 'globex is served before')
  }
  t.equal(rotating.silo.resolver.stats().cached, 2)

  // Through the rekey the rotating instance reads the catalog on every request (caches cleared),
  // so it reads the credentials before, during and after the change.
  const rekey = spawnCli(['rekey'], envFor(origin, ROTATION))
  let output = ''
  rekey.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  rekey.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => { rekey.on('close', resolve) })
  const rekeying = { done: false }
  void exited.then(() => { rekeying.done = true })
  const during: number[] = []
  while (!rekeying.done) {
    rotating.silo.resolver.clear()
    during.push(await articles(rotating.app, 'acme.test'), await articles(rotating.app, 'globex.test'))
  }
  t.equal(await exited, 0, 'rekey succeeds')
  t.match(output, /^re-encrypted 2 of 2 tenant credentials under SECRET_KEY \(key id [\w-]{12}, was [\w-]{12}\)\n/)
  t.ok(during.length > 0)
  t.same(during.filter((status) => status !== 200), [], `the rotating instance served all ${during.length} requests through it`)

  const newId = keyIdOf(NEW_KEY)
  t.equal(await catalogKeyId(origin), newId, 'the catalog records the new key id')
  const stored = await storedCredentials(origin)
  t.same(Object.keys(stored), ['acme', 'globex'])
  for (const [slug, sealed] of Object.entries(stored)) t.match(sealed, new RegExp(`^v2:${newId}:`), `${slug}: v2 under the new key`)

  await rotating.silo.syncCatalog()
  await oldOnly.silo.syncCatalog()
  t.same(rotating.keyEvents, [{ keyId: newId, held: true }], 'the rotating instance heard of the new key, and holds it')
  t.same(oldOnly.keyEvents, [{ keyId: newId, held: false }], 'the old-key instance heard of it, and knows it lacks it')

  t.equal(await articles(oldOnly.app, 'acme.test'), 200, 'the old-key instance still serves its cached tenants: no row change was announced')
  oldOnly.silo.resolver.clear()
  const refused = await oldOnly.app.inject({ url: '/articles', headers: { host: 'acme.test' } })
  t.equal(refused.statusCode, 503, 'what it has to read again it cannot decrypt')
  t.equal(refused.json().code, 'TENANT_UNAVAILABLE')
  await t.rejects(createTenant(oldOnly.silo, 'hooli'), 'and it cannot store a credential no one else could read')

  await createTenant(rotating.silo, 'initech', { seed: true })
  t.match((await storedCredentials(origin)).initech, new RegExp(`^v2:${newId}:`), 'the rotating instance seals new credentials with the new key now')

  const newOnly = await instance(t, origin, { SECRET_KEY: NEW_KEY })
  for (const host of ['acme.test', 'globex.test', 'initech.test']) t.equal(await articles(newOnly.app, host), 200, `an instance with only the new key serves ${host}`)
  await t.rejects(openSilo(configFor(origin, { SECRET_KEY: OLD_KEY })),
    { code: 'CONFIG_INVALID', message: /does not match the key the tenant credentials in this catalog were stored with/ }, 'one with only the old key is refused')

  const again = await runCli(['rekey'], envFor(origin, ROTATION))
  t.equal(again.code, 0)
  t.equal(again.stdout, `nothing to do: the 3 tenant credentials are already under SECRET_KEY (key id ${newId})\n`, 'running it again is a no-op that says so')
  t.same(leaks(output + again.stdout + again.stderr), [], 'no key printed')
})

t.test('rekey changes nothing, and names the tenant, when a credential decrypts with neither key', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: OLD_KEY })
  await createTenant(silo, 'acme')
  await createTenant(silo, 'globex')
  await createTenant(silo, 'initech')
  await storeCredential(silo, 'globex', sealV1('whatever', STRAY_KEY))
  const before = await storedCredentials(silo)

  const text = await runCli(['rekey'], envFor(silo, ROTATION))
  t.equal(text.code, 1)
  t.equal(text.stderr, 'tenants: rekey refused, nothing changed: 1 of 3 credentials decrypt with neither SECRET_KEY nor SECRET_KEY_PREVIOUS: globex\n')
  const json = await runCli(['rekey', '--json'], envFor(silo, ROTATION))
  t.equal(json.code, 1)
  t.match(JSON.parse(json.stdout), { changed: false, reencrypted: 0, tenants: 3, failed: [{ slug: 'globex', reason: /none of the keys/ }] })
  t.same(await storedCredentials(silo), before, 'every stored credential is as it was')
  t.equal(await catalogKeyId(silo), keyIdOf(OLD_KEY), 'so is the catalog\'s key id')
  t.same(leaks(text.stdout + text.stderr + json.stdout + json.stderr), [], 'no key printed')
})

t.test('rekey takes its keys from the environment only', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: OLD_KEY })
  await createTenant(silo, 'acme')
  const before = await storedCredentials(silo)
  for (const args of [['rekey', NEW_KEY], ['rekey', `--key=${NEW_KEY}`], ['rekey', '--old', OLD_KEY]]) {
    const res = await runCli(args, envFor(silo, ROTATION))
    t.equal(res.code, 2, 'a usage error')
    t.match(res.stderr, /rekey takes no arguments or other options: it reads the new key from SECRET_KEY and the old one from SECRET_KEY_PREVIOUS/)
    t.same(leaks(res.stdout + res.stderr), [], 'and it does not repeat the key')
  }
  const missing = await runCli(['rekey'], envFor(silo, { SECRET_KEY: NEW_KEY }))
  t.equal(missing.code, 2)
  t.match(missing.stderr, /rekey needs the new key in SECRET_KEY and the old one in SECRET_KEY_PREVIOUS/)
  t.same(await storedCredentials(silo), before, 'nothing changed')
})

t.test('a running server that lacks the new key says it must be restarted with it, and keeps serving what it has', async (t) => {
  const silo = await testSilo(t, { SECRET_KEY: OLD_KEY })
  await createTenant(silo, 'acme', { seed: true })
  const server = spawnServer(t, envFor(silo, { SECRET_KEY: OLD_KEY }, { LOG_LEVEL: 'info', HOST_CACHE_TTL_MS: '600000' }))
  const port = await server.listening(60000)
  t.equal((await httpGet(port, 'acme.test', '/articles')).status, 200, 'served before')

  t.equal((await runCli(['rekey'], envFor(silo, ROTATION))).code, 0)
  const line = await server.waitForLine(/under a key this instance does not hold/, 30000).catch(() => null)
  t.ok(line !== null, 'the server logs it')
  t.match(JSON.parse(line ?? '{}'), { level: 50, keyId: keyIdOf(NEW_KEY), msg: /restart it with the new SECRET_KEY/ })
  t.equal((await httpGet(port, 'acme.test', '/articles')).status, 200, 'its cached tenant is still served')
  t.equal((await server.stop()).code, 0)
  t.same(leaks(server.stdout() + server.stderr()), [], 'no key in its output')
})
