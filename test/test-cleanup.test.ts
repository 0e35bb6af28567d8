// The tests' own support: the clean-up drops by prefix, unchecked, so it must refuse every name a
// test did not make; and the processes tests spawn run as a user's would, without tap's hook.
import t from './helpers/tap.js'
import { runProcess } from './helpers/cli.js'
import { root } from './helpers/compiled.js'
import { dropSiloDatabases } from '../src/testing/cleanup.js'
import { databaseUrl, dropTestDatabases, testConfig } from './helpers/silo.js'

t.test("the tests' clean-up refuses the shipped defaults, the server's own databases and any name a test did not make", async (t) => {
  const { catalogDatabase, tenantDbPrefix } = testConfig()
  const refused: Array<[string, string, string]> = [
    ['silo_catalog', 'silo_', 'the shipped defaults (the catalog named with the prefix)'],
    [catalogDatabase, 'silo_', "a test's catalog with the shipped prefix"],
    ['silo_catalog', tenantDbPrefix, "the shipped catalog with a test's prefix"],
    ['postgres', tenantDbPrefix, 'postgres'],
    ['template0', tenantDbPrefix, 'template0'],
    ['template1', tenantDbPrefix, 'template1'],
    [catalogDatabase, 'st_', 'a prefix shorter than a test makes'],
    [catalogDatabase, '', 'no prefix at all']
  ]
  for (const [catalog, prefix, what] of refused) {
    await t.rejects(dropTestDatabases({ catalogDatabase: catalog, tenantDbPrefix: prefix }), /not names made for a test/, `refuses ${what}`)
    // The drop under it (the bench's, the OpenAPI script's, with-database's) refuses them as well.
    await t.rejects(dropSiloDatabases(databaseUrl(), { catalogDatabase: catalog, tenantDbPrefix: prefix }), /not names made for a throwaway run/, `the shared drop refuses ${what}`)
  }
  await dropTestDatabases({ catalogDatabase, tenantDbPrefix })
  t.pass("and takes a test's own names")
})

t.test("a process a test spawns runs without tap's module hook, whatever env it is given", async (t) => {
  const probe = "console.log(JSON.stringify([process.env.NODE_OPTIONS ?? '', process.execArgv]))"
  for (const env of [undefined, { PATH: process.env.PATH ?? '' }]) {
    const { code, stdout } = await runProcess(process.execPath, ['-e', probe], { cwd: root, ...(env === undefined ? {} : { env }) })
    t.equal(code, 0)
    t.notMatch(stdout, /@tapjs/, env === undefined ? "with the test's own env" : 'with an env of its own')
  }
})
