import { createRequire } from 'node:module'

/**
 * tap, loaded through its CommonJS build: every test file takes `t` from here, not from 'tap'.
 *
 * tap's runner starts each test file with @tapjs/processinfo's module hook (`--import`, always,
 * even with coverage off). On Node 20 that hook runs every ES module the file loads through a
 * hooks thread, and tap's own ES build is some hundreds of modules: loading it cost a test file
 * 0.7 s of CPU more than loading it without the hook. Node 20 passes `require()` by the hook, so
 * the CommonJS build loads at its own cost: a file that only imports tap took 1.5 s of CPU under
 * the runner's flags from 'tap', 0.8 s from here. Nothing else changes: the same `t`, the same
 * TAP on stdout, the same runner.
 *
 * Only one tap may load in a test process (two would each print a plan), so nothing under test/
 * imports a value from 'tap'; type imports (`import type { Test } from 'tap'`) are erased.
 */
const tap = createRequire(import.meta.url)('tap') as typeof import('tap')

export default tap.t
