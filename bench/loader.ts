/**
 * The load generator, run as a process of its own so that it does not share an event loop
 * with the server it measures: `node --import tsx bench/loader.ts '<LoadOptions JSON>'`
 * prints one LoadResult as JSON on stdout.
 */
import autocannon from 'autocannon'
import { hostPicker } from './hosts.js'
import type { LoadOptions, LoadResult } from './load.js'

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions
const host = hostPicker(options.host)
const result = await autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.durationS,
  requests: [{
    method: 'GET',
    setupRequest: (request) => ({ ...request, path: options.path, headers: { ...request.headers, host: host() } })
  }]
})
const requests = result.requests.total
const output: LoadResult = {
  okPerS: (requests - result.non2xx) / options.durationS,
  rps: requests / options.durationS,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  requests,
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts
}
process.stdout.write(JSON.stringify(output) + '\n')
