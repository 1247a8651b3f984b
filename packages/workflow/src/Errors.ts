/**
 * The errors of durable runs, beside core's (`ZapierError`, which a run's outcome can be).
 *
 * @example
 * ```ts
 * import { DurableRuns } from "@effect-zapier/workflow"
 * import { Effect } from "effect"
 *
 * const outcome = Effect.flatMap(DurableRuns.DurableRuns, (runs) => runs.await("order-42")).pipe(
 *   Effect.catchTag("DurableRunNotFound", () => Effect.succeed(undefined))
 * )
 * ```
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * No durable run was started with this key (on any replica sharing the store).
 * @since 0.1.0
 * @category errors
 */
export class DurableRunNotFound extends Schema.TaggedError<DurableRunNotFound>(
  "@effect-zapier/workflow/DurableRunNotFound"
)("DurableRunNotFound", {
  key: Schema.String
}) {
  override get message(): string {
    return `No durable run was started with key ${JSON.stringify(this.key)}. Check the key, or start the run first.`
  }
}

/**
 * The key was already used to start a run with a different request. The first run is kept as it was: pick a new
 * key for a different run (keys are the caller's job or message ids).
 * @since 0.1.0
 * @category errors
 */
export class DurableRunConflict extends Schema.TaggedError<DurableRunConflict>(
  "@effect-zapier/workflow/DurableRunConflict"
)("DurableRunConflict", {
  key: Schema.String
}) {
  override get message(): string {
    return (
      `The key ${JSON.stringify(this.key)} already started a run with a different request; it was not started again. ` +
      `Use a new key for a different run.`
    )
  }
}

/**
 * The durable store (PostgreSQL or SQLite under the workflow engine, and the runs table) could not be reached or
 * failed. A `start` that fails with it may or may not have registered the run: call `start` again with the same key
 * and request, which is idempotent.
 * @since 0.1.0
 * @category errors
 */
export class RunStoreUnavailable extends Schema.TaggedError<RunStoreUnavailable>(
  "@effect-zapier/workflow/RunStoreUnavailable"
)("RunStoreUnavailable", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The durable run store failed during ${this.operation}: ${this.reason}. Check the database; retrying with the same key is safe.`
  }
}

/**
 * The run was interrupted with `DurableRuns.interrupt` before it ended. If the action run had been created at
 * Zapier, `runId` names it (the action may still have run there).
 * @since 0.1.0
 * @category errors
 */
export class DurableRunInterrupted extends Schema.TaggedError<DurableRunInterrupted>(
  "@effect-zapier/workflow/DurableRunInterrupted"
)("DurableRunInterrupted", {
  key: Schema.String
}) {
  override get message(): string {
    return `The durable run ${JSON.stringify(this.key)} was interrupted before it ended; the action may still have run at Zapier.`
  }
}
