/**
 * tap's `before` step (.taprc): fails the run, saying why, when the compiled tests in dist/test
 * are older than their sources or than the code they test.
 */
import { staleReason } from './build.mjs'

const reason = staleReason('tests')
if (reason !== null) {
  process.stderr.write(`The compiled tests are stale (${reason}): run \`npm test\`, or \`npm run build:test\` before \`npx tap\`.\n`)
  process.exit(1)
}
