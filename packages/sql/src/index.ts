/**
 * @effect-zapier/sql: durable implementations of core's `ConnectionStore` on `@effect/sql`. `SqliteStore` is the
 * embedded default (one file, one backend); `PgStore` serves a fleet; `SqlStore` runs on an app's own client.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as PgStore from "./PgStore.js"
/** @since 0.1.0 */
export * as SqliteStore from "./SqliteStore.js"
/** @since 0.1.0 */
export * as SqlStore from "./SqlStore.js"
