/**
 * Durable runs on PostgreSQL (`@effect/sql-pg`, an optional peer dependency of this package): a runner of a fleet
 * (`layerCluster`) or one process (`layerSingle`). The `pg` options are `@effect/sql-pg`'s `PgClientConfig`.
 *
 * @example
 * ```ts
 * import * as DurablePg from "@effect-zapier/workflow/DurablePg"
 * import { Redacted } from "effect"
 *
 * // one runner per replica; every replica reaches the others on host:port and shares the database
 * const durable = DurablePg.layerCluster({
 *   pg: { url: Redacted.make(process.env.DATABASE_URL ?? "") },
 *   runnerAddress: { host: process.env.POD_IP ?? "localhost", port: 34431 }
 * })
 * ```
 * @since 0.1.0
 */
import type * as SocketServer from "@effect/platform/SocketServer"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import * as DurableLayers from "./DurableLayers.js"
import type * as DurableRuns from "./DurableRuns.js"
import type { RunStoreUnavailable } from "./Errors.js"

/**
 * A runner of a fleet: `DurableLayers.layerClusterWithoutSql` on a PostgreSQL pool.
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (
  options: DurableLayers.ClusterOptions & { readonly pg: PgClient.PgClientConfig }
): Layer.Layer<
  DurableRuns.DurableRuns,
  RunStoreUnavailable | SocketServer.SocketServerError | ConfigError.ConfigError | SqlError,
  DurableLayers.ZapierServices
> => DurableLayers.layerClusterWithoutSql(options).pipe(Layer.provide(PgClient.layer(options.pg)))

/**
 * One process: `DurableLayers.layerSingleWithoutSql` on a PostgreSQL pool.
 * @since 0.1.0
 * @category layers
 */
export const layerSingle = (
  options: DurableLayers.Options & DurableLayers.StoreOptions & { readonly pg: PgClient.PgClientConfig }
): Layer.Layer<DurableRuns.DurableRuns, RunStoreUnavailable | SqlError, DurableLayers.ZapierServices> =>
  DurableLayers.layerSingleWithoutSql(options).pipe(Layer.provide(PgClient.layer(options.pg)))
