/**
 * Core's `ConnectionStore` in PostgreSQL (node-postgres through `@effect/sql-pg`), for a fleet of backends: any
 * backend can complete a connect attempt that another one opened, and only one can.
 *
 * @example
 * ```ts
 * import { EmbeddedActions } from "@effect-zapier/core"
 * import * as PgStore from "@effect-zapier/sql/PgStore"
 * import { Layer, Redacted } from "effect"
 *
 * const store = PgStore.layer({ url: Redacted.make("postgres://app@db.internal:5432/app") })
 * const live = EmbeddedActions.layer.pipe(Layer.provide(store)) // plus the Zapier services
 * ```
 * @since 0.1.0
 */

import type { ConnectionOptions } from "node:tls"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import { StoreUnavailable } from "@effect-zapier/core/Errors"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { describeCause, fromDefect } from "./internal/errors.js"
import * as SqlStore from "./SqlStore.js"

/**
 * Where the database is: a `url` (`postgres://user:password@host:5432/db`, `Redacted` because it may hold the
 * password), or its parts. Parts given next to a `url` override it.
 * @since 0.1.0
 * @category models
 */
export interface Options extends SqlStore.Options {
  readonly url?: Redacted.Redacted | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  readonly ssl?: boolean | ConnectionOptions | undefined
  /** The pool's size (node-postgres defaults to 10). */
  readonly maxConnections?: number | undefined
  /** How long connecting may take (default 5 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Shown in `pg_stat_activity` (default `effect-zapier`). */
  readonly applicationName?: string | undefined
}

/**
 * Connects a pool (checked with one query), runs the migrations, and provides `ConnectionStore`. The pool is closed
 * when the layer's scope closes. An unreachable server or refused credentials fail the layer with
 * `StoreUnavailable` (operation `connect`) whose message holds an error code and advice, never the URL or password.
 *
 * @example
 * ```ts
 * import * as PgStore from "@effect-zapier/sql/PgStore"
 * import { Redacted } from "effect"
 *
 * const password = Redacted.make(process.env.DATABASE_PASSWORD ?? "")
 * const store = PgStore.layer({ host: "127.0.0.1", database: "app", username: "app", password })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<ConnectionStore, StoreUnavailable> =>
  Layer.scoped(
    ConnectionStore,
    Effect.gen(function* () {
      const { tablePrefix, applicationName, ...connection } = options
      const client = yield* PgClient.make({ ...connection, applicationName: applicationName ?? "effect-zapier" }).pipe(
        Effect.mapError(
          (e) =>
            new StoreUnavailable({
              operation: "connect",
              reason: describeCause("could not connect to PostgreSQL", e.cause)
            })
        ),
        Effect.catchAllDefect((defect) => Effect.fail(fromDefect("connect", "could not connect to PostgreSQL")(defect)))
      )
      return yield* SqlStore.make({ tablePrefix }).pipe(Effect.provideService(SqlClient.SqlClient, client))
    })
  ).pipe(Layer.provide(Reactivity.layer))

/**
 * The store from configuration, e.g. `PgStore.layerConfig({ url: Config.redacted("DATABASE_URL") })`.
 *
 * @example
 * ```ts
 * import * as PgStore from "@effect-zapier/sql/PgStore"
 * import { Config } from "effect"
 *
 * const store = PgStore.layerConfig({ url: Config.redacted("DATABASE_URL"), maxConnections: Config.succeed(5) })
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<ConnectionStore, StoreUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The environment variables {@link layerFromEnv} reads: `ZAPIER_STORE_PG_URL` (required, read as `Redacted`),
 * `ZAPIER_STORE_PG_MAX_CONNECTIONS` (optional, default 10) and `ZAPIER_STORE_TABLE_PREFIX` (optional).
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  url: Config.redacted("ZAPIER_STORE_PG_URL").pipe(
    Config.withDescription("PostgreSQL URL of the connection store: postgres://user:password@host:5432/db")
  ),
  maxConnections: Config.integer("ZAPIER_STORE_PG_MAX_CONNECTIONS").pipe(
    Config.validate({ message: "must be a whole number from 1 to 1000", validation: (n) => n >= 1 && n <= 1000 }),
    Config.withDefault(10)
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
 * import * as PgStore from "@effect-zapier/sql/PgStore"
 * import { Layer } from "effect"
 *
 * // ZAPIER_STORE_PG_URL=postgres://app:secret@db.internal:5432/app
 * const live = EmbeddedActions.layer.pipe(Layer.provide(PgStore.layerFromEnv))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<ConnectionStore, StoreUnavailable | ConfigError.ConfigError> =
  Layer.unwrapEffect(Effect.map(config, layer))
