/**
 * Soak: concurrent admin operations while tenants serve. Many admin callers at once (more than
 * the catalog has connections) suspend, resume, add and remove domains of a few tenants, while
 * clients read and write those tenants' articles over a listening server. No answer may be a
 * 5xx; each must be one the operation allows (a suspend finding another operation on its tenant
 * is 409 TENANT_LOCKED, a request to a suspended tenant 403 TENANT_SUSPENDED). Afterwards the
 * catalog holds exactly what the successful operations left (each tenant's status is the one its
 * last status change set, its domains are those added and not removed), every host answers
 * accordingly, every write a client was told succeeded is in its tenant's database, and no lease
 * or retiring pool is left.
 *
 * Size: SOAK_SCALE (default 1): admin operations 300 x scale, 16 admin callers at once, 12 tenants (more than the catalog has connections, as many lock holders at once).
 *   CI size (default, SOAK_SCALE=1): 300 operations, 15-30 s on a busy 2-core machine.
 *   Full size (SOAK_SCALE=10): 3,000 operations, a few minutes:
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres SOAK_SCALE=10 npx tap --timeout=1800 dist/test/soak/admin-churn.test.js (after npm run build:test)
 */
import t from '../helpers/tap.js'
import { testApp } from '../helpers/silo.js'
import { createTenants, listen, soakScale, withTenantDatabase, type HttpResponse } from '../helpers/soak.js'
import { eventually } from '../helpers/wait.js'

const scale = soakScale()
const TENANTS = 12
const OPERATIONS = Math.round(300 * scale)
const ADMIN_CALLERS = 16
const CLIENTS = 6
const token = 'admin-token-for-soak-0123456789'

interface TenantModel {
  slug: string
  /** Domains added beyond the primary one and not removed, not counting those an operation is removing now. */
  extra: Set<string>
  /** Successful suspends and resumes: the status each left and when. */
  changes: Array<{ status: string, at: number }>
  /** Articles the tenant's clients were told were created. */
  written: number
}

t.test(`${OPERATIONS} admin operations, ${ADMIN_CALLERS} at a time, on ${TENANTS} serving tenants: no 5xx, and the catalog ends as the operations left it`, async (t) => {
  // Why each 5xx was answered (name, code, message of the error behind it), printed if any was.
  const causes: string[] = []
  const { silo, app } = await testApp(t, { ADMIN_TOKEN: token, TENANT_POOLS_MAX: 4, TENANT_ACQUIRE_TIMEOUT_MS: 30000, HOST_CACHE_TTL_MS: 600000 }, (app) => {
    app.addHook('onError', async (request, _reply, error) => {
      const cause = (error as { cause?: { name?: string, code?: string, message?: string } }).cause
      causes.push(`${request.method} ${request.url}: ${error.name} ${String((error as { code?: unknown }).code)} ${error.message}` +
        (cause === undefined ? '' : ` (cause: ${String(cause.name)} ${String(cause.code)} ${String(cause.message)})`))
    })
  })
  const slugs = Array.from({ length: TENANTS }, (_, i) => `churn-${i}`)
  await createTenants(silo, slugs)
  const models: TenantModel[] = slugs.map((slug) => ({ slug, extra: new Set(), changes: [], written: 0 }))
  const http = await listen(t, app, CLIENTS)

  const failures: string[] = []
  const counts = { suspend: 0, resume: 0, addDomain: 0, removeDomain: 0, locked: 0, requests: 0, suspendedAnswers: 0 }
  const describe = (what: string, status: number, body: string): string => `${what}: ${status} ${body.slice(0, 200)}`
  let sequence = 0

  const admin = async (method: 'POST' | 'DELETE', url: string, payload?: object): Promise<{ statusCode: number, body: string, json: () => Record<string, unknown> }> =>
    await app.inject({ method, url, headers: { host: 'admin.localhost', authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload }) })

  const changeStatus = async (model: TenantModel, action: 'suspend' | 'resume'): Promise<void> => {
    counts[action]++
    const res = await admin('POST', `/tenants/${model.slug}/${action}`)
    if (res.statusCode === 200) {
      const body = res.json()
      model.changes.push({ status: String(body.status), at: Date.parse(String(body.updatedAt)) })
    } else if (res.statusCode === 409 && res.json().code === 'TENANT_LOCKED') {
      counts.locked++
    } else {
      failures.push(describe(`${action} ${model.slug}`, res.statusCode, res.body))
    }
  }
  const addDomain = async (model: TenantModel): Promise<void> => {
    counts.addDomain++
    const domain = `d${++sequence}.${model.slug}.test`
    const res = await admin('POST', `/tenants/${model.slug}/domains`, { domain })
    if (res.statusCode === 201) model.extra.add(domain)
    else failures.push(describe(`add ${domain}`, res.statusCode, res.body))
  }
  const removeDomain = async (model: TenantModel): Promise<void> => {
    const domain = [...model.extra][Math.floor(Math.random() * model.extra.size)]
    if (domain === undefined) return await addDomain(model)
    counts.removeDomain++
    // Taken out of the model first: no other caller removes it meanwhile.
    model.extra.delete(domain)
    const res = await admin('DELETE', `/tenants/${model.slug}/domains/${domain}`)
    if (res.statusCode !== 204) {
      model.extra.add(domain)
      failures.push(describe(`remove ${domain}`, res.statusCode, res.body))
    }
  }
  const operations: Array<[number, (model: TenantModel) => Promise<void>]> = [
    [35, async (model) => { await changeStatus(model, 'suspend') }],
    [35, async (model) => { await changeStatus(model, 'resume') }],
    [18, addDomain],
    [12, removeDomain]
  ]
  const pick = (): ((model: TenantModel) => Promise<void>) => {
    let roll = Math.random() * 100
    for (const [weight, operation] of operations) {
      roll -= weight
      if (roll < 0) return operation
    }
    return addDomain
  }

  /** A tenant's clients, on its primary domain (never removed): served, or refused while it is suspended. */
  const traffic = async (model: TenantModel, write: boolean): Promise<void> => {
    counts.requests++
    let res: HttpResponse
    try {
      res = write
        ? await http.send('POST', '/articles', `${model.slug}.test`, { title: `<<${model.slug}>> #${++sequence}`, body: '' })
        : await http.send('GET', '/articles?limit=5', `${model.slug}.test`)
    } catch (error) {
      failures.push(`${model.slug} ${write ? 'POST' : 'GET'}: ${(error as Error).message}`)
      return
    }
    const code = (res.body as { code?: string } | undefined)?.code
    if (res.status === (write ? 201 : 200)) {
      if (write) model.written++
    } else if (res.status === 403 && code === 'TENANT_SUSPENDED') {
      counts.suspendedAnswers++
    } else {
      failures.push(`${model.slug} ${write ? 'POST' : 'GET'}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
    }
  }

  const randomModel = (): TenantModel => models[Math.floor(Math.random() * models.length)] as TenantModel
  const started = Date.now()
  let issued = 0
  const phase = { adminDone: false }
  // Each caller walks the tenants from a place of its own, so that at any moment most tenants have
  // an operation under way: as many lock holders at once as there are tenants.
  const adminCallers = Array.from({ length: ADMIN_CALLERS }, async (_, caller) => {
    for (let step = 0; issued < OPERATIONS; step++) {
      issued++
      await pick()(models[(caller + step) % models.length] as TenantModel)
    }
  })
  const adminFinished = Promise.all(adminCallers).then(() => { phase.adminDone = true })
  const clients = Array.from({ length: CLIENTS }, async (_, client) => {
    for (let i = client; !phase.adminDone; i++) await traffic(randomModel(), i % 3 === 0)
  })
  await Promise.all([adminFinished, ...clients])
  const elapsed = Date.now() - started

  // Every successful change has reached this instance's caches before the hosts are checked.
  await silo.syncCatalog()
  const drained = await eventually(() => { const stats = silo.pools.stats(); return stats.leases === 0 && stats.retiring === 0 })
  const summaries = new Map((await silo.catalog.listTenants(slugs)).map((summary) => [summary.slug, summary]))
  const wrong: string[] = []
  let hostsChecked = 0
  for (const model of models) {
    const summary = summaries.get(model.slug)
    if (summary === undefined) {
      wrong.push(`${model.slug} is gone`)
      continue
    }
    // The last change is the one with the newest updatedAt (answers carry milliseconds: at a tie either may be last).
    const newest = Math.max(...model.changes.map((change) => change.at))
    const last = model.changes.filter((change) => change.at === newest).map((change) => change.status)
    if (model.changes.length === 0 ? summary.status !== 'active' : !last.includes(summary.status)) {
      wrong.push(`${model.slug} is ${summary.status}, its last change left ${last.join(' or ') || 'active'}`)
    }
    if (model.changes.length > 0 && summary.updatedAt.getTime() !== newest) wrong.push(`${model.slug} was changed by something no operation reported`)
    const expected = [`${model.slug}.test`, ...model.extra].sort()
    if (JSON.stringify([...summary.domains].sort()) !== JSON.stringify(expected)) {
      wrong.push(`${model.slug} has domains ${summary.domains.join(', ')}, expected ${expected.join(', ')}`)
    }
    for (const host of expected) {
      hostsChecked++
      const res = await app.inject({ url: '/tenant', headers: { host } })
      const wanted = summary.status === 'active' ? 200 : 403
      if (res.statusCode !== wanted || (wanted === 200 && res.json().slug !== model.slug)) wrong.push(`${host}: ${res.statusCode} ${res.body.slice(0, 120)}, expected ${wanted}`)
    }
    const [row] = await withTenantDatabase(silo, model.slug, async (db) => await db('articles').count<Array<{ n: string }>>('* as n'))
    if (Number(row?.n) !== model.written) wrong.push(`${model.slug} holds ${String(row?.n)} articles, its clients were told ${model.written} were created`)
  }

  t.comment(`${issued} admin operations in ${elapsed} ms: ${counts.suspend} suspend, ${counts.resume} resume, ${counts.addDomain} add domain, ${counts.removeDomain} remove domain; ${counts.locked} found their tenant locked`)
  t.comment(`${counts.requests} tenant requests meanwhile, ${counts.suspendedAnswers} refused as suspended; ${hostsChecked} hosts checked afterwards`)
  for (const failure of failures.slice(0, 10)) t.comment(`failed: ${failure}`)
  if (failures.length > 0) for (const cause of causes.slice(0, 20)) t.comment(`error: ${cause}`)
  for (const problem of wrong.slice(0, 10)) t.comment(`wrong: ${problem}`)

  t.equal(failures.length, 0, 'every answer was one its operation allows, and none was a 5xx')
  t.equal(wrong.length, 0, 'the catalog, the hosts and the tenant databases hold what the successful operations left')
  t.ok(counts.suspend > 0 && counts.resume > 0 && counts.addDomain > 0 && counts.removeDomain > 0, 'the mix exercised every operation')
  t.ok(counts.requests > 0, 'tenants were served while the operations ran')
  t.ok(drained, 'no lease is left and no pool is retiring')
})
