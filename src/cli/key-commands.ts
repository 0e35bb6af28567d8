import type { Command } from 'commander'
import { UsageError, type Action } from './usage.js'
import { withSilo } from './open-silo.js'

/** `3 tenant credentials`, and `and 1 server admin URL` when servers other than `default` are registered. */
const credentials = (result: { tenants: number, servers: number }): string =>
  `${result.tenants} tenant credentials${result.servers === 0 ? '' : ` and ${result.servers} server admin URL${result.servers === 1 ? '' : 's'}`}`

/** `rekey`: moves every stored tenant credential to SECRET_KEY (the key rotation's one step). */
export function keyCommands (program: Command, action: Action): void {
  program.command('rekey')
    .description('re-encrypt every stored tenant credential with SECRET_KEY, reading them with SECRET_KEY or SECRET_KEY_PREVIOUS (the old key); both keys come from the environment only')
    .option('--json', 'print JSON')
    // Anything else on the command line is refused by the action below, which never repeats it:
    // commander's own errors quote an unknown option whole (`--key=...`).
    .allowUnknownOption()
    .allowExcessArguments()
    .action(action(async (options: { json?: boolean }, command: Command) => {
      if (command.args.length > 0) {
        throw new UsageError('rekey takes no arguments or other options: it reads the new key from SECRET_KEY and the old one from SECRET_KEY_PREVIOUS ' +
          '(a key on the command line ends up in shell history and the process list)')
      }
      const [{ loadConfig }, { CredentialCipher }, { rekeyCatalog }] = await Promise.all([import('../config.js'), import('../catalog/credential-cipher.js'), import('../catalog/catalog-key.js')])
      const config = loadConfig()
      if (config.secretKey === undefined || config.secretKeyPrevious === undefined) {
        throw new UsageError('rekey needs the new key in SECRET_KEY and the old one in SECRET_KEY_PREVIOUS (environment)')
      }
      const cipher = new CredentialCipher({ current: config.secretKey, previous: config.secretKeyPrevious })
      // Opening the core checks the keys against the catalog: it must be under one of them.
      const result = await withSilo(async (silo) => await rekeyCatalog(silo.catalog.knex, cipher))
      if (options.json === true) {
        console.log(JSON.stringify(result, null, 2))
        return result.failed.length === 0
      }
      if (result.failed.length > 0) {
        throw new Error(`rekey refused, nothing changed: ${result.failed.length} of ${result.tenants + result.servers} credentials decrypt with neither SECRET_KEY nor ` +
          `SECRET_KEY_PREVIOUS: ${result.failed.map((failure) => failure.slug).join(', ')}`)
      }
      if (!result.changed) {
        console.log(`nothing to do: the ${credentials(result)} are already under SECRET_KEY (key id ${result.keyId})`)
      } else {
        console.log(`re-encrypted ${result.reencrypted} of ${credentials(result)} under SECRET_KEY (key id ${result.keyId}, was ${result.previousKeyId ?? 'unrecorded'})`)
        console.log('running instances were told through the catalog feed; once every instance runs with the new SECRET_KEY, drop SECRET_KEY_PREVIOUS')
      }
      return true
    }))
}
