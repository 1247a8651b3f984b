/**
 * @effect-zapier/workflow: durable Zapier action runs for a fleet, on `@effect/workflow` and `@effect/cluster` with
 * PostgreSQL (or SQLite on one process, or memory in tests).
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
