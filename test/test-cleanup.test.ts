// The tests' own clean-up drops by prefix, unchecked: it must refuse every name a test did not make.
import t from 'tap'
import { dropTestDatabases, testConfig } from './helpers/silo.js'

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
  }
  await dropTestDatabases({ catalogDatabase, tenantDbPrefix })
  t.pass("and takes a test's own names")
})
