import { readdir } from 'node:fs/promises'
import type { Knex } from 'knex'
import { moduleExtension } from './paths.js'

interface MigrationModule {
  up: (knex: Knex) => Promise<void>
  down: (knex: Knex) => Promise<void>
  config?: { transaction?: boolean }
}

/**
 * A knex migration source over one directory that records names without their extension,
 * so a database migrated from the TypeScript sources and one migrated by the compiled build
 * agree on what has run. The listing is read once per process: the fleet migrator asks for
 * it once per tenant.
 */
export class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  readonly #dir: URL
  #files: Promise<string[]> | undefined

  constructor (dir: URL) {
    this.#dir = dir
  }

  getMigrations (): Promise<string[]> {
    this.#files ??= readdir(this.#dir).then((entries) =>
      entries
        .filter((name) => name.endsWith(moduleExtension) && !name.endsWith('.d.ts'))
        .sort()
    )
    return this.#files
  }

  getMigrationName (file: string): string {
    return file.slice(0, -moduleExtension.length)
  }

  async getMigration (file: string): Promise<MigrationModule> {
    return await import(new URL(file, this.#dir).href) as MigrationModule
  }

  /** Name of the newest migration in the directory: the schema version the code expects. */
  async latestName (): Promise<string | null> {
    const files = await this.getMigrations()
    const last = files.at(-1)
    return last === undefined ? null : this.getMigrationName(last)
  }
}
