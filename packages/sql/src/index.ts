/**
 * @effect-zapier/sql: durable implementations of core's `ConnectionStore` on `@effect/sql`. This entry point holds
 * only the driver-free `SqlStore` (the store on an app's own `SqlClient`). Each database driver has an entry point of
 * its own, so an app installs and loads only the driver it uses (both are optional peer dependencies):
 *
 * - `@effect-zapier/sql/SqliteStore`: the embedded default (one file, one backend), needs `@effect/sql-sqlite-node`;
 * - `@effect-zapier/sql/PgStore`: PostgreSQL for a fleet, needs `@effect/sql-pg`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as SqlStore from "./SqlStore.js"
