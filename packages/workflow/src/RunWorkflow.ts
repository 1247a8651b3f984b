/**
 * One Zapier action run as an `@effect/workflow` `Workflow`, whose execution id derives from the caller's key.
 *
 * Its steps, each journaled by the engine so a replay (after a crash, on any replica) skips what is done:
 * 1. `resolve` (activity): the connection (the request's, or `EmbeddedActions.ensureConnection`), a fresh action id,
 *    and the pre-run input check.
 * 2. `create` (activity): the "about to create" claim in the runs table (`RunRegistry.claimCreate`), the create-run
 *    POST, then the run id recorded. Its result is journaled, so a replay never POSTs again. A replay that finds the
 *    claim taken without a recorded run id is the one ambiguous window (a crash after the POST was sent and before
 *    its answer was recorded): the run ends with `RunOutcomeUnknown` carrying the action, the connection and the
 *    time of the claim, never a second POST.
 * 3. the wait: sleeps between `poll/<n>` activities (each one GET of the run), checking before each poll the
 *    `outcome` `DurableDeferred`, which a run callback completes (`DurableRuns.complete`) from any replica. A wait
 *    up to `inMemorySleepThreshold` is held in memory until a time planned from the create's or the last poll's
 *    journaled answer (a replay finds it passed); longer ones, and every wait of a run with a `callbackUrl`, are
 *    `DurableClock` timers that suspend the execution, so a callback wakes it at once.
 *
 * With core's `RunCallbacks` in context, the create sends the configured callback URL with a fresh routing token
 * (registered on the `RunEvents` bus), the waits suspend between slow safety-net polls, and the replica running the
 * execution waits on the bus for the run's end: a callback received by any replica (the bus is Redis for a fleet)
 * completes `outcome`, which the engine delivers to the execution's owner and which wakes it at once.
 * 4. the typed outcome: `RunResult`, or a failure of core's taxonomy (`ActionRunFailed`, `PollTimeout`,
 *    `RunOutcomeUnknown`, `ConnectionRequired`, …) or `RunStoreUnavailable`, journaled as the workflow's result.
 *
 * @example
 * ```ts
 * import { RunWorkflow } from "@effect-zapier/workflow"
 *
 * // registers the workflow with the engine in context (DurableRuns' layers do this for you)
 * const registered = RunWorkflow.layer({ deadline: "1 hour" })
 * ```
 * @since 0.1.0
 */
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import * as Workflow from "@effect/workflow/Workflow"
import { WorkflowEngine, WorkflowInstance } from "@effect/workflow/WorkflowEngine"
import { ActionCatalog } from "@effect-zapier/core/ActionCatalog"
import { ActionRuns } from "@effect-zapier/core/ActionRuns"
import {
  ActionId,
  ActionKey,
  ActionRunId,
  ActionType,
  AppId,
  ConnectionId,
  EndUser,
  RunFailed,
  RunPending,
  RunResult,
  RunSucceeded
} from "@effect-zapier/core/Domain"
import { EmbeddedActions, resolveRun } from "@effect-zapier/core/EmbeddedActions"
import { ActionRunFailed, PollTimeout, RunOutcomeUnknown, ZapierError } from "@effect-zapier/core/Errors"
import * as Polling from "@effect-zapier/core/Polling"
import { RunCallbacks } from "@effect-zapier/core/RunCallbacks"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { RunStoreUnavailable } from "./Errors.js"
import { retryStoreDefects } from "./internal/store.js"
import { RunRegistry } from "./RunRegistry.js"

/**
 * A durable run's request: core's `RunRequest` without its in-memory-only parts (everything here is stored as
 * JSON in the journal, and compared to detect a key reused with another request).
 * @since 0.1.0
 * @category models
 */
export const DurableRequest = Schema.Struct({
  user: EndUser,
  app: AppId,
  action: ActionKey,
  /** Defaults to `WRITE`. */
  actionType: Schema.optional(ActionType),
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /** Run with this connection instead of looking one up; `null` for apps without authentication. */
  connection: Schema.optional(Schema.NullOr(ConnectionId)),
  /** An HTTPS URL Zapier posts the finished run to (see `DurableRuns.complete`). */
  callbackUrl: Schema.optional(Schema.String),
  /** How long to wait for the run to end, from its creation (defaults to the layer's deadline). */
  timeout: Schema.optional(Schema.DurationFromMillis),
  /** Check the inputs against the action's fields before creating (default: on for `WRITE`). */
  validateInputs: Schema.optional(Schema.Boolean),
  /** With the check on, also check dropdown values against their choices (default off). */
  validateChoices: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 */
export type DurableRequest = typeof DurableRequest.Type

/**
 * Every way a durable run can fail: core's taxonomy, and the store failing under the create step.
 * @since 0.1.0
 * @category models
 */
export const RunFailure = Schema.Union(ZapierError, RunStoreUnavailable)
/** @since 0.1.0 */
export type RunFailure = typeof RunFailure.Type

/**
 * The workflow. Its execution id is a digest of its name and the caller's key, so the same key is one execution
 * on every replica.
 * @since 0.1.0
 * @category workflows
 */
export const RunWorkflow = Workflow.make({
  name: "EffectZapier/ActionRun",
  payload: { key: Schema.String, request: DurableRequest },
  success: RunResult,
  error: RunFailure,
  idempotencyKey: (payload) => payload.key
})

/**
 * What a run callback completes: the run's terminal state.
 * @since 0.1.0
 * @category deferreds
 */
export const Outcome = DurableDeferred.make("outcome", { success: Schema.Union(RunSucceeded, RunFailed) })

/**
 * The token that completes {@link Outcome} for the execution of `executionId` (from any replica).
 * @since 0.1.0
 * @category deferreds
 */
export const outcomeToken = (executionId: string): DurableDeferred.Token =>
  DurableDeferred.tokenFromExecutionId(Outcome, { workflow: RunWorkflow, executionId })

/**
 * Tells a running execution that a signal (a run callback's `outcome`, or `interrupt`) was sent to it. The cluster
 * engine hands a workflow one message at a time, so a signal sent while the execution runs waits until it
 * suspends; between polls the execution asks this probe and, when a signal is pending, suspends so the engine
 * delivers it and resumes the execution. `DurableLayers` provides the cluster's (a read of the message store);
 * without one, the engine's own view of the deferreds is used (the memory engine records signals at once).
 * @since 0.1.0
 * @category signals
 */
export class PendingSignals extends Context.Tag("@effect-zapier/workflow/PendingSignals")<
  PendingSignals,
  { readonly pending: (executionId: string, names: ReadonlyArray<string>) => Effect.Effect<boolean> }
>() {}

/**
 * The engine's own signal for `interrupt` (a deferred named by `@effect/workflow`'s cluster engine).
 * @since 0.1.0
 * @category signals
 */
export const InterruptSignal = DurableDeferred.make("Workflow/InterruptSignal")

/** @since 0.1.0 */
export interface Options {
  /** How long to wait for a run to end, from its creation, unless the request says otherwise (default 1 hour). */
  readonly deadline?: Duration.DurationInput | undefined
  /**
   * Waits between polls up to this long are held in memory (precise and cheap: no timer, nothing written; a replay
   * finds the planned time passed); longer ones are durable timers in the store that suspend the execution. Default
   * 60 seconds. Runs with
   * a `callbackUrl` always suspend between polls (their polls are a slow safety net, see `callbackPolling`), so a
   * callback wakes them at once; other runs see a callback or an `interrupt` at their next poll.
   */
  readonly inMemorySleepThreshold?: Duration.DurationInput | undefined
  /**
   * The safety-net polling of runs created with a callback (default: `RunCallbacks`' safety net when that service is
   * in context, 15 s doubling to 60 s; else 5 s doubling to 60 s for a request's own `callbackUrl`).
   */
  readonly callbackPolling?: Partial<Polling.PolicyShape> | undefined
  /** How long a `NotFound` right after the create counts as eventual consistency (default: the polling policy's). */
  readonly notFoundGrace?: Duration.DurationInput | undefined
}

const Created = Schema.Struct({
  runId: ActionRunId,
  createdAt: Schema.Number,
  /** Created with the configured run callback (its end comes from the run-event bus). */
  callback: Schema.optional(Schema.Boolean)
})
const Resolved = Schema.Struct({ actionId: ActionId, connection: Schema.NullOr(ConnectionId) })
/** A poll that found Zapier busy: poll again later (after `retryAfter` when Zapier said so). */
class Retry extends Schema.TaggedClass<Retry>("@effect-zapier/workflow/Retry")("Retry", {
  reason: Schema.String,
  retryAfter: Schema.optional(Schema.DurationFromMillis)
}) {}
const Polled = Schema.Union(RunPending, RunSucceeded, RunFailed, Retry)
/** A poll's answer and when it came (the next poll is planned from it, so a replay finds the time passed). */
const PollAnswer = Schema.Struct({ state: Polled, at: Schema.Number })

const isTransient = (e: { readonly _tag: string }) => e._tag === "ZapierUnavailable" || e._tag === "RateLimited"

const createEndpoint = "POST /v2/action-runs/"

/**
 * Builds the workflow's body from the services it needs (yielded once).
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options) =>
  Effect.gen(function* () {
    const runs = yield* ActionRuns
    const catalog = yield* ActionCatalog
    const actions = yield* EmbeddedActions
    const registry = yield* RunRegistry
    const defaultDeadline = Duration.decode(options?.deadline ?? Duration.hours(1))
    const threshold = Duration.decode(options?.inMemorySleepThreshold ?? Duration.seconds(60))
    const probe = yield* Effect.serviceOption(PendingSignals)
    const callbacks = yield* Effect.serviceOption(RunCallbacks)
    // One watcher per execution waiting on the run-event bus, on the replica running the execution (see below).
    const watchers = yield* FiberMap.make<string>()

    // Store writes inside a step are retried for a while: the engine's own journal lives in the same database.
    const storeRetry = Schedule.exponential(Duration.millis(200), 2).pipe(
      Schedule.union(Schedule.spaced(Duration.seconds(5))),
      Schedule.intersect(Schedule.recurs(8))
    )

    // The whole execution replayed while the store is out: quickly at first, then every 5 seconds.
    const storeOutageRetry = Schedule.exponential(Duration.millis(200), 2).pipe(
      Schedule.union(Schedule.spaced(Duration.seconds(5)))
    )

    const resolve = (request: DurableRequest) =>
      Activity.make({
        name: "resolve",
        success: Resolved,
        error: ZapierError,
        execute: Effect.gen(function* () {
          const { action, connection } = yield* resolveRun(request, {
            catalog,
            connectionFor: actions.ensureConnection
          })
          return { actionId: action.id, connection }
        }).pipe(
          Effect.retry({
            schedule: Schedule.exponential(Duration.millis(500), 2).pipe(Schedule.jittered),
            times: 4,
            while: isTransient
          })
        )
      })

    const create = (key: string, request: DurableRequest, resolved: typeof Resolved.Type) =>
      Activity.make({
        name: "create",
        success: Created,
        error: RunFailure,
        execute: Effect.gen(function* () {
          const at = yield* Clock.currentTimeMillis
          const unknown = (reason: string, info: { at: number; status?: number | undefined }) =>
            new RunOutcomeUnknown({
              endpoint: createEndpoint,
              reason,
              app: request.app,
              action: request.action,
              connection: resolved.connection,
              actionId: resolved.actionId,
              sentAt: DateTime.unsafeMake(info.at),
              ...(info.status !== undefined ? { status: info.status } : {})
            })
          const claim = yield* registry
            .claimCreate(key, { actionId: resolved.actionId, connection: resolved.connection, at })
            .pipe(Effect.retry(storeRetry))
          if (claim._tag === "Taken") {
            if (claim.runId !== undefined) return { runId: claim.runId, createdAt: claim.at }
            return yield* unknown(
              "an earlier attempt of this durable run stopped after it was about to send the create and before it " +
                "recorded Zapier's answer; it was not sent again",
              { at: claim.at }
            )
          }
          // The configured run callback, unless the request brings its own URL (then it calls `complete` itself).
          const target =
            request.callbackUrl === undefined && Option.isSome(callbacks) ? yield* callbacks.value.target() : undefined
          const runId = yield* runs
            .create(request.user, {
              action: resolved.actionId,
              connection: resolved.connection,
              inputs: request.inputs,
              callbackUrl: target !== undefined ? Redacted.value(target.url) : request.callbackUrl
            })
            .pipe(
              Effect.catchTag("RunOutcomeUnknown", (e) => Effect.fail(unknown(e.reason, { at, status: e.status }))),
              // Anything else provably created nothing (the client only reports those): the claim is given back.
              Effect.tapError((e) =>
                e._tag === "RunOutcomeUnknown" ? Effect.void : Effect.ignore(registry.releaseClaim(key))
              )
            )
          yield* registry.recordRunId(key, runId).pipe(Effect.retry(storeRetry))
          if (target !== undefined && Option.isSome(callbacks)) {
            // the receiver trusts a callback for this run only with this token; without it, polling still ends it
            yield* callbacks.value.events.expect(runId, target.token).pipe(
              Effect.tapError((e) => Effect.logWarning("DurableRuns: the run callback was not registered", e.message)),
              Effect.ignore
            )
            return { runId, createdAt: at, callback: true }
          }
          return { runId, createdAt: at }
        })
      })

    const poll = (request: DurableRequest, created: typeof Created.Type, n: number, grace: Duration.Duration) =>
      Activity.make({
        name: `poll/${n}`,
        success: PollAnswer,
        error: ZapierError,
        execute: runs.get(request.user, created.runId).pipe(
          Effect.catchTags({
            RateLimited: (e) => Effect.succeed(new Retry({ reason: "rate limited", retryAfter: e.retryAfter })),
            ZapierUnavailable: (e) => Effect.succeed(new Retry({ reason: e.reason })),
            NotFound: (e) =>
              Effect.flatMap(Clock.currentTimeMillis, (now) =>
                now - created.createdAt <= Duration.toMillis(grace)
                  ? Effect.succeed(new Retry({ reason: "not found yet" }))
                  : Effect.fail(e)
              )
          }),
          Effect.flatMap((state) => Effect.map(Clock.currentTimeMillis, (at) => ({ state, at })))
        )
      })

    const settle = (state: RunSucceeded | RunFailed) =>
      state._tag === "RunSucceeded"
        ? Effect.succeed(RunResult.make({ runId: state.runId, results: state.results }))
        : Effect.fail(new ActionRunFailed({ runId: state.runId, errors: state.errors }))

    return (payload: { readonly key: string; readonly request: DurableRequest }) =>
      Effect.gen(function* () {
        const { key, request } = payload
        const engine = yield* WorkflowEngine
        const instance = yield* WorkflowInstance
        const deadline = request.timeout ?? defaultDeadline

        const resolved = yield* resolve(request)
        const created = yield* create(key, request, resolved)
        const withCallback = created.callback === true || request.callbackUrl !== undefined
        const plain = yield* Polling.Policy
        const policy: Polling.PolicyShape = withCallback
          ? {
              ...plain,
              ...(Option.isSome(callbacks)
                ? callbacks.value.safetyNet
                : { initialDelay: Duration.seconds(5), factor: 2, maxDelay: Duration.seconds(60) }),
              ...options?.callbackPolling
            }
          : plain
        const inMemoryThreshold = withCallback ? Duration.zero : threshold
        const grace = Duration.decode(options?.notFoundGrace ?? policy.notFoundGrace)
        if (created.callback === true && Option.isSome(callbacks)) {
          // The run's end, published on the bus by whichever replica received the callback, completes `Outcome`
          // (the engine routes it to this execution's owner and resumes the execution). Started again by whichever
          // replica runs the execution after a restart; ended when the execution settles.
          const bus = callbacks.value.events
          yield* FiberMap.run(
            watchers,
            instance.executionId,
            bus.await(created.runId).pipe(
              Effect.retry(Schedule.spaced(Duration.seconds(5))),
              Effect.flatMap((event) =>
                engine.deferredDone(Outcome, {
                  workflowName: RunWorkflow.name,
                  executionId: instance.executionId,
                  deferredName: Outcome.name,
                  exit: Exit.succeed(event.state)
                })
              ),
              Effect.timeout(deadline),
              Effect.ignore
            ),
            { onlyIfMissing: true }
          )
        }

        // A callback (from any replica) completes `Outcome`; `interrupt` sends the engine's `InterruptSignal`.
        const signalNames = [Outcome.name, InterruptSignal.name]
        const checkSignals = Effect.gen(function* () {
          if (instance.interrupted || (yield* engine.deferredResult(InterruptSignal)) !== undefined) {
            return yield* Workflow.suspend(instance)
          }
          const outcome = yield* engine.deferredResult(Outcome)
          if (outcome !== undefined) return outcome
          if (Option.isSome(probe) && (yield* probe.value.pending(instance.executionId, signalNames))) {
            // sent but not delivered: suspend so the engine delivers it and resumes this execution
            return yield* Workflow.suspend(instance)
          }
          return undefined
        })

        const waitForEnd = Effect.gen(function* () {
          let delay = Duration.toMillis(policy.initialDelay)
          let lastStatus: string | undefined
          // the time the next poll is planned from: the create, then each poll's answer (both journaled)
          let since = created.createdAt
          for (let n = 0; ; n++) {
            const early = yield* checkSignals
            if (early !== undefined) return yield* Effect.flatMap(early, settle)
            const now = yield* Clock.currentTimeMillis
            const left = created.createdAt + Duration.toMillis(deadline) - now
            if (left <= 0) {
              return yield* new PollTimeout({
                runId: created.runId,
                waited: deadline,
                ...(lastStatus !== undefined ? { lastStatus } : {})
              })
            }
            const jitter = policy.jitter > 0 ? 1 - policy.jitter + (yield* Random.next) * 2 * policy.jitter : 1
            const wait = Math.max(0, Math.min(left, since + Math.round(delay * jitter) - now))
            if (wait <= Duration.toMillis(inMemoryThreshold) && Duration.toMillis(inMemoryThreshold) > 0) {
              // Held in memory, and nothing of the run in flight in the store while it waits (a journaled sleep is a
              // step whose answer an outage can strand): a replay finds the planned time passed and polls at once.
              if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
            } else {
              yield* DurableClock.sleep({
                name: `poll/${n}`,
                duration: Duration.millis(Math.max(1, wait)),
                inMemoryThreshold: Duration.zero
              })
            }
            const late = yield* checkSignals
            if (late !== undefined) return yield* Effect.flatMap(late, settle)
            const answer = yield* poll(request, created, n, grace)
            const polled = answer.state
            since = answer.at
            const grown = Math.min(delay * policy.factor, Duration.toMillis(policy.maxDelay))
            switch (polled._tag) {
              case "Retry":
                delay = Math.max(grown, polled.retryAfter ? Duration.toMillis(polled.retryAfter) : 0)
                continue
              case "RunPending":
                lastStatus = polled.status
                delay = Math.max(grown, polled.retryAfter ? Duration.toMillis(polled.retryAfter) : 0)
                continue
              default:
                return yield* settle(polled)
            }
          }
        })
        // settled (not suspended): the bus watcher of this execution is no longer needed
        return yield* waitForEnd.pipe(
          Effect.onExit((exit) =>
            Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
              ? Effect.void
              : FiberMap.remove(watchers, instance.executionId)
          )
        )
      }).pipe(
        // The engine dies when its store fails under a step (a journal write, a timer, a signal read). Dying would
        // end the run for good (or leave it stuck); instead the execution runs again as a replay once the store
        // answers, until the run's deadline.
        retryStoreDefects(storeOutageRetry.pipe(Schedule.upTo(payload.request.timeout ?? defaultDeadline)), (failure) =>
          Effect.logWarning(`DurableRuns: the store failed under run ${payload.key}; replaying (${failure})`)
        )
      )
  })

/**
 * Registers the workflow with the `WorkflowEngine` in context; its steps use the Zapier services and the runs
 * table given to the layer.
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<never, never, WorkflowEngine | ActionRuns | ActionCatalog | EmbeddedActions | RunRegistry> =>
  Layer.unwrapScoped(Effect.map(make(options), (execute) => RunWorkflow.toLayer((payload) => execute(payload))))
