import { InvalidArgumentError, type Command } from 'commander'
import { SERVER_NAME_PATTERN } from '../catalog/server-store.js'
import { validationFailed } from '../errors.js'
import { assertServerName, parseAdminUrl, type AddServerInput } from '../lifecycle/server-registry.js'
import { serverView } from '../schemas/servers.js'
import { withSilo } from './open-silo.js'
import { serversTable } from './output.js'
import { urlFromStdin, type Action } from './usage.js'

/** A commander parser for an integer option from 1 to `max` (the limits the registry enforces). */
const integer = (max: number) => (value: string): number => {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`)
  return n
}

/**
 * A server name, checked before the core is opened, and never repeated when refused: an admin
 * URL typed in its place would be. One that looks like a URL says where the URL goes.
 */
export function cliServerName (name: string): string {
  if (!SERVER_NAME_PATTERN.test(name) && /[:@/]/.test(name)) {
    throw validationFailed('Invalid server name (not repeated: it looks like a URL; give the admin URL with --url): use 2-40 characters a-z, 0-9 and -, starting with a letter')
  }
  return assertServerName(name)
}

interface AddOptions {
  url: string
  tenantHost?: string
  tenantPort?: number
  maxTenants?: number
  weight?: number
  budget?: number
}

/** `servers add|list|drain|resume|remove`: the PostgreSQL servers tenant databases are placed on. */
export function serverCommands (program: Command, action: Action): void {
  const servers = program.command('servers')
    .description('the PostgreSQL servers tenant databases are placed on (`default` is DATABASE_URL\'s)')

  servers.command('add <name>')
    .description('register a PostgreSQL server: it must answer, and its role must be allowed to create databases and roles; the URL is stored encrypted and never shown again')
    .requiredOption('--url <admin-url>', 'postgres://user:password@host:port/database of a role with CREATEDB and CREATEROLE (or a superuser); `-` reads it from standard input, keeping the password out of shell history and the process list')
    .option('--tenant-host <host>', 'where tenant connections go, when not the admin URL\'s host (e.g. a pooler)')
    .option('--tenant-port <port>', 'the port tenant connections go to (1-65535)', integer(65535))
    .option('--max-tenants <n>', 'the most tenants it takes (1-1000000; default: no limit)', integer(1_000_000))
    .option('--weight <w>', 'its share of new tenants against the other servers (1-1000; default 1)', integer(1000))
    .option('--budget <n>', 'the most connections to its tenant databases (1-100000; default: CONNECTION_BUDGET)', integer(100_000))
    .action(action(async (name: string, options: AddOptions) => {
      cliServerName(name)
      const url = options.url === '-' ? await urlFromStdin('the admin URL') : options.url
      parseAdminUrl(url)
      const input: AddServerInput = {
        name,
        url,
        tenantHost: options.tenantHost,
        tenantPort: options.tenantPort,
        maxTenants: options.maxTenants,
        weight: options.weight,
        connectionBudget: options.budget
      }
      const server = await withSilo(async (silo) => await silo.serverRegistry.add(input))
      const details = [
        `PostgreSQL ${server.serverVersion ?? 'unknown'}`,
        `weight ${server.weight}`,
        ...(server.maxTenants === null ? [] : [`at most ${server.maxTenants} tenants`]),
        ...(server.connectionBudget === null ? [] : [`budget ${server.connectionBudget} connections`]),
        ...(server.tenantHost === null && server.tenantPort === null ? [] : [`tenants connect to ${server.tenantHost ?? 'its host'}:${server.tenantPort ?? 'its port'}`])
      ]
      console.log(`added server ${server.name} (${details.join(', ')})`)
      return true
    }))

  servers.command('list')
    .description('list the servers with their status, tenants, weight, and what a probe finds now (reachable, version, sessions, size)')
    .option('--json', 'print JSON')
    .action(action(async (options: { json?: boolean }) => {
      const states = await withSilo(async (silo) => await silo.serverRegistry.list())
      console.log(options.json === true ? JSON.stringify(states.map(serverView), null, 2) : serversTable(states.map(serverView)))
      return true
    }))

  for (const [command, status] of [['drain', 'draining'], ['resume', 'active']] as const) {
    servers.command(`${command} <name>`)
      .description(command === 'drain'
        ? 'stop placing new tenants on a server; its tenants stay and are served'
        : 'place new tenants on a drained server again')
      .action(action(async (name: string) => {
        cliServerName(name)
        const server = await withSilo(async (silo) => await silo.serverRegistry.setStatus(name, status))
        console.log(`${server.name} is ${server.status}`)
        return true
      }))
  }

  servers.command('remove <name>')
    .description('forget a server that holds no tenants (Silo\'s template and spare databases there are dropped); `default` stays')
    .action(action(async (name: string) => {
      cliServerName(name)
      const { cleaned } = await withSilo(async (silo) => await silo.serverRegistry.remove(name))
      console.log(cleaned
        ? `removed server ${name}`
        : `removed server ${name}; it did not answer, so this catalog's template and spare databases there, if any, are left (drop them by hand should it come back)`)
      return true
    }))
}
