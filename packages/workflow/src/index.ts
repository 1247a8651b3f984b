/**
 * @effect-zapier/workflow: durable Zapier action runs for a fleet, on `@effect/workflow` and `@effect/cluster`.
 * This entry point holds the driver-free modules; each database driver has an entry point of its own, so an app
 * installs and loads only the one it uses (both are optional peer dependencies):
 *
 * - `@effect-zapier/workflow/DurablePg`: PostgreSQL, for a fleet (`layerCluster`) or one process, needs
 *   `@effect/sql-pg`;
 * - `@effect-zapier/workflow/DurableSqlite`: SQLite, for one process, needs `@effect/sql-sqlite-node`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as DurableLayers from "./DurableLayers.js"
/** @since 0.1.0 */
export * as DurableRuns from "./DurableRuns.js"
/** @since 0.1.0 */
export * as Errors from "./Errors.js"
/** @since 0.1.0 */
export * as RunRegistry from "./RunRegistry.js"
/** @since 0.1.0 */
export * as RunWorkflow from "./RunWorkflow.js"
