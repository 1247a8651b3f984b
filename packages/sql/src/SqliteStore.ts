/**
 * The embedded default: core's `ConnectionStore` in a SQLite file (better-sqlite3 through
 * `@effect/sql-sqlite-node`), surviving restarts of a single backend. `:memory:` gives a throwaway database.
 *
 * @example
 * ```ts
 * import { EmbeddedActions } from "@effect-zapier/core"
 * import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
 * import { Layer } from "effect"
 *
 * const store = SqliteStore.layer({ filename: "./data/zapier.db" })
 * const live = EmbeddedActions.layer.pipe(Layer.provide(store)) // plus the Zapier services
 * ```
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import type { StoreUnavailable } from "@effect-zapier/core/Errors"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { fromDefect } from "./internal/errors.js"
import * as SqlStore from "./SqlStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends SqlStore.Options {
  /** The database file (created if missing; its directory must exist), or `:memory:`. */
  readonly filename: string
  /** Keep SQLite's rollback journal instead of switching the file to WAL mode (the default). */
  readonly disableWAL?: boolean | undefined
}

/**
 * Opens (or creates) the SQLite database, runs the migrations, and provides `ConnectionStore`. The file is closed
 * when the layer's scope closes. A file that cannot be opened fails the layer with `StoreUnavailable`.
 *
 * @example
 * ```ts
 * import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
 *
 * const store = SqliteStore.layer({ filename: ":memory:" })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<ConnectionStore, StoreUnavailable> =>
  Layer.scoped(
    ConnectionStore,
    Effect.gen(function* () {
      const client = yield* SqliteClient.make({
        filename: options.filename,
        ...(options.disableWAL !== undefined ? { disableWAL: options.disableWAL } : {})
      }).pipe(
        // better-sqlite3 throws from its constructor (missing directory, not a database, …).
        Effect.catchAllDefect((defect) =>
          Effect.fail(
            fromDefect(
              "open",
              `the SQLite database ${JSON.stringify(options.filename)} could not be opened`,
              "check that the file's directory exists and is writable"
            )(defect)
          )
        )
      )
      return yield* SqlStore.make(options).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

/**
 * The store from configuration, e.g. `SqliteStore.layerConfig({ filename: Config.string("DB_FILE") })`.
 *
 * @example
 * ```ts
 * import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
 * import { Config } from "effect"
 *
 * const store = SqliteStore.layerConfig({ filename: Config.string("DB_FILE"), tablePrefix: Config.succeed("zapier_") })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<ConnectionStore, StoreUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The environment variables {@link layerFromEnv} reads: `ZAPIER_STORE_SQLITE_PATH` (required; a file path or
 * `:memory:`) and `ZAPIER_STORE_TABLE_PREFIX` (optional).
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  filename: Config.string("ZAPIER_STORE_SQLITE_PATH").pipe(
    Config.withDescription("The SQLite file of the connection store (or :memory:)")
  ),
  tablePrefix: Config.string("ZAPIER_STORE_TABLE_PREFIX").pipe(
    Config.withDescription("Prefix of the connection store's tables"),
    Config.withDefault(SqlStore.defaultTablePrefix)
  )
})

/**
 * The store configured from the environment (see {@link config}).
 *
 * @example
 * ```ts
 * import { EmbeddedActions } from "@effect-zapier/core"
 * import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
 * import { Layer } from "effect"
 *
 * // ZAPIER_STORE_SQLITE_PATH=./data/zapier.db
 * const live = EmbeddedActions.layer.pipe(Layer.provide(SqliteStore.layerFromEnv))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<ConnectionStore, StoreUnavailable | ConfigError.ConfigError> =
  Layer.unwrapEffect(Effect.map(config, layer))
