/**
 * Steps 4b and 5 of the flow: create an action run and read its state.
 *
 * @example
 * ```ts
 * import { ActionCatalog, ActionRuns, Domain } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const connection = Domain.ConnectionId.make("10002")
 *
 * const program = Effect.gen(function* () {
 *   const runs = yield* ActionRuns.ActionRuns
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const action = yield* catalog.resolve(user, Domain.AppId.make("slack"), Domain.ActionKey.make("send_message"), "WRITE")
 *   const runId = yield* runs.create(user, { action: action.id, connection, inputs: { channel: "#general" } })
 *   const state = yield* runs.get(user, runId) // RunPending | RunSucceeded | RunFailed
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ActionId, ActionRunId, ConnectionId, EndUser, RunState } from "./Domain.js"
import type { RequestError, RunOutcomeUnknown } from "./Errors.js"

/** @since 0.1.0 */
export interface CreateRun {
  /** The fresh action id of this run (from `ActionCatalog.resolve`). */
  readonly action: ActionId
  /** The connection to run with; `null` for apps without authentication. */
  readonly connection: ConnectionId | null
  readonly inputs: Readonly<Record<string, unknown>>
  /** An HTTPS URL Zapier posts the finished run to. */
  readonly callbackUrl?: string | undefined
}

/** @since 0.1.0 */
export interface Service {
  /**
   * Creates the run. Fails with `RunOutcomeUnknown` when the request may have reached Zapier but its answer was
   * lost: it is never replayed then, so a run is never created twice.
   */
  readonly create: (user: EndUser, run: CreateRun) => Effect.Effect<ActionRunId, RequestError | RunOutcomeUnknown>
  /** The run's current state. */
  readonly get: (user: EndUser, runId: ActionRunId) => Effect.Effect<RunState, RequestError>
  /**
   * True while `get` is a held read (the Actions API's long-poll read, which Zapier holds until the run ends or its
   * wait passes): one read costs one request however long it waits, so `await` sends the first one at once instead
   * of on the polling schedule. Absent: plain reads.
   */
  readonly heldReads?: (() => boolean) | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ActionRuns extends Context.Tag("@effect-zapier/core/ActionRuns")<ActionRuns, Service>() {}

const unreported = (_sentAt: number): void => {}

/**
 * How a `get` that sends requests says when the read that answered was sent: the epoch millis (on the `Clock`) at
 * which its last attempt went out, after any wait before it (a rate limiter's slot, a retry's delay, a token
 * exchange). `EmbeddedActions.await` provides it around its reads and learns from it how long an action's runs
 * take: a read sent then saw the run ended, so the next runs' first poll is placed there. A `get` that does not
 * report (the default does nothing) is counted from when its answer came, which is sure but carries the round
 * trip, so the polls of an action whose runs end at once settle later. A held read (long-poll) must not report:
 * Zapier answers it when the run ends, not when it arrives. `@effect-zapier/http` reports its plain reads.
 *
 * @example
 * ```ts
 * import { ActionRuns } from "@effect-zapier/core"
 * import { Clock, Effect } from "effect"
 *
 * // In a `get`: report the moment the request goes out, after any wait for a rate limiter's slot.
 * const sendReported = <A, E, R>(send: Effect.Effect<A, E, R>) =>
 *   Effect.zipRight(
 *     Effect.flatMap(ActionRuns.ReadSent, (report) => Effect.map(Clock.currentTimeMillis, report)),
 *     send
 *   )
 * ```
 * @since 0.3.0
 * @category tags
 */
export class ReadSent extends Context.Reference<ReadSent>()("@effect-zapier/core/ActionRuns/ReadSent", {
  defaultValue: (): ((sentAt: number) => void) => unreported
}) {}
