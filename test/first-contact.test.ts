import t from './helpers/tap.js'
import { createTenant, testApp } from './helpers/silo.js'

/*
 * Someone's first requests: `http://127.0.0.1:3000/docs` and `http://localhost:3000/docs`. The
 * codes and statuses are the contract's; the messages say why and where to go.
 */

const { silo, app } = await testApp(t)
await createTenant(silo, 'acme', { domains: ['acme.localhost'] })
const admin = silo.config.adminHost
const get = async (url: string, host: string) => await app.inject({ url, headers: { host } })

t.test('an IP address as Host is 400 HOST_INVALID saying Silo routes by host name, and naming the admin host and its docs', async (t) => {
  for (const [host, docs] of [['127.0.0.1:3000', `http://${admin}:3000/docs`], ['127.0.0.1', `http://${admin}/docs`], ['[::1]:8080', `http://${admin}:8080/docs`], ['10.0.0.7:3000', `http://${admin}:3000/docs`]]) {
    for (const url of ['/docs', '/articles', '/tenants']) {
      const res = await get(url, host ?? '')
      t.match(res.json(), { statusCode: 400, code: 'HOST_INVALID', error: 'Bad Request' }, `${host} ${url}`)
      const { message } = res.json() as { message: string }
      t.match(message, /routes requests by host name/, `${host} ${url}: why`)
      t.ok(message.includes(`${host} is an IP address`), `${host} ${url}: what was wrong`)
      t.ok(message.includes(docs ?? ''), `${host} ${url}: where to go (${docs})`)
    }
  }
  for (const host of ['bad_host', 'acme.localhost:99999', '-x.localhost', '1.2.3.4.5']) {
    t.match((await get('/docs', host)).json(), { code: 'HOST_INVALID', message: 'Host header is missing or malformed' }, `${host}: a malformed name keeps the plain message`)
  }
})

t.test('a host that is no tenant asking for an admin path is 404 TENANT_NOT_FOUND saying those live on the admin host', async (t) => {
  for (const url of ['/docs', '/docs/', '/docs/json', '/docs/static/index.html', '/tenants', '/tenants/acme', '/tenants?x=1', '/metrics', '/console', '/console/console.js']) {
    const res = await get(url, 'localhost:3000')
    t.equal(res.statusCode, 404, url)
    const body = res.json() as { code: string, message: string }
    t.equal(body.code, 'TENANT_NOT_FOUND', url)
    t.match(body.message, /^No tenant is served at localhost\. /, `${url}: why`)
    t.ok(body.message.includes(`admin host ${admin}: http://${admin}:3000/docs`), `${url}: names the admin host and its docs, with the port used`)
  }
  t.ok((await get('/metrics', 'nobody.example')).json().message.includes(`http://${admin}/docs`), 'no port in Host, none in the link')
})

t.test('other refusals keep their plain messages: only admin paths get the hint', async (t) => {
  for (const url of ['/articles', '/tenant', '/documents', '/docsx', '/tenantsx', '/metrics2', '/consoles', '/', '/nope']) {
    t.same((await get(url, 'localhost:3000')).json(), { statusCode: 404, code: 'TENANT_NOT_FOUND', error: 'Not Found', message: 'No tenant is served at localhost' }, url)
  }
  t.same((await get('/articles', 'acme.localhost')).statusCode, 200, 'a tenant is served as before')
  t.match((await get('/docs', 'acme.localhost')).json(), { statusCode: 404, code: 'NOT_FOUND' }, "a tenant's host has no /docs: NOT_FOUND, as before")
  t.equal((await get('/docs', `${admin}:3000`)).statusCode < 400, true, 'the admin host serves the docs')
})
