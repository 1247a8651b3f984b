/**
 * Durable runs on SQLite (`@effect/sql-sqlite-node`, an optional peer dependency of this package), for one process:
 * runs survive its restarts.
 *
 * @example
 * ```ts
 * import * as DurableSqlite from "@effect-zapier/workflow/DurableSqlite"
 *
 * const durable = DurableSqlite.layerSingle({ sqlite: { filename: "./durable-runs.db" } })
 * ```
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import * as DurableLayers from "./DurableLayers.js"
import type * as DurableRuns from "./DurableRuns.js"
import type { RunStoreUnavailable } from "./Errors.js"

/**
 * One process: `DurableLayers.layerSingleWithoutSql` on a SQLite file.
 * @since 0.1.0
 * @category layers
 */
export const layerSingle = (
  options: DurableLayers.Options & DurableLayers.StoreOptions & { readonly sqlite: SqliteClient.SqliteClientConfig }
): Layer.Layer<DurableRuns.DurableRuns, RunStoreUnavailable | ConfigError.ConfigError, DurableLayers.ZapierServices> =>
  DurableLayers.layerSingleWithoutSql(options).pipe(Layer.provide(SqliteClient.layer(options.sqlite)))
