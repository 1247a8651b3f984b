/**
 * Durable action runs: started once per caller key, owned by exactly one replica at a time, surviving restarts and
 * crashes, readable from any replica. Built on `@effect/workflow` ({@link RunWorkflow}) and, for a fleet,
 * `@effect/cluster` with PostgreSQL (see the package README for the topology and the guarantees).
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 * import { DurableRuns } from "@effect-zapier/workflow"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const runs = yield* DurableRuns.DurableRuns
 *   // the key is the caller's own job or message id: starting it again returns the same execution
 *   yield* runs.start("order-42", {
 *     user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" }),
 *     app: Domain.AppId.make("slack"),
 *     action: Domain.ActionKey.make("send_channel_message"),
 *     inputs: { channel: "#general", text: "Order 42 shipped" }
 *   })
 *   return yield* runs.await("order-42") // from this replica or any other
 * })
 * ```
 * @since 0.1.0
 */
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import type * as Workflow from "@effect/workflow/Workflow"
import { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type { ActionRunId, RunFailed, RunResult, RunSucceeded } from "@effect-zapier/core/Domain"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { DurableRunConflict, DurableRunInterrupted, DurableRunNotFound, RunStoreUnavailable } from "./Errors.js"
import { fingerprint } from "./internal/fingerprint.js"
import { describeStoreDefect, isStoreDefect } from "./internal/store.js"
import { type Registration, RunRegistry } from "./RunRegistry.js"
import { DurableRequest, Outcome, type RunFailure, RunWorkflow } from "./RunWorkflow.js"

/**
 * Where a run is.
 * @since 0.1.0
 * @category models
 */
export type Status =
  | {
      readonly _tag: "Running"
      readonly executionId: string
      /** Zapier's run id, once the create answered. */
      readonly runId: ActionRunId | undefined
    }
  | { readonly _tag: "Succeeded"; readonly executionId: string; readonly result: RunResult }
  | {
      readonly _tag: "Failed"
      readonly executionId: string
      readonly error: RunFailure | DurableRunInterrupted
    }

/** @since 0.1.0 */
export interface Service {
  /**
   * Starts the run for `key` (the caller's job or message id) and returns its execution id. Idempotent: the same
   * key and request return the same execution, on any replica; the same key with another request fails with
   * `DurableRunConflict`. Once it returns, the run is in the store: no crash or restart loses it.
   */
  readonly start: (
    key: string,
    request: DurableRequest
  ) => Effect.Effect<string, DurableRunConflict | RunStoreUnavailable>
  /** Where the run is now (from any replica). */
  readonly result: (key: string) => Effect.Effect<Status, DurableRunNotFound | RunStoreUnavailable>
  /** Waits for the run's outcome (from any replica). */
  readonly await: (
    key: string
  ) => Effect.Effect<RunResult, RunFailure | DurableRunInterrupted | DurableRunNotFound | RunStoreUnavailable>
  /** Stops the run at its next wait; `await` then fails with `DurableRunInterrupted`. */
  readonly interrupt: (key: string) => Effect.Effect<void, DurableRunNotFound | RunStoreUnavailable>
  /**
   * Completes a run from its terminal state as a run callback delivered it (after the callback was verified). Works
   * on any replica: the engine routes it to the replica that owns the run. Unknown run ids are ignored (`false`),
   * as is a callback that overtakes the record of the create's answer (rare: the polls still end the run).
   */
  readonly complete: (state: RunSucceeded | RunFailed) => Effect.Effect<boolean, RunStoreUnavailable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DurableRuns extends Context.Tag("@effect-zapier/workflow/DurableRuns")<DurableRuns, Service>() {}

/** @since 0.1.0 */
export interface Options {
  /** How often `await` reads the run's state (grows from 100 ms to this; default 1 second). */
  readonly awaitInterval?: Duration.DurationInput | undefined
  /** The longest `start` (or a read) may take before it fails with `RunStoreUnavailable` (default 30 seconds). */
  readonly storeTimeout?: Duration.DurationInput | undefined
}

const encodeRequest = Schema.encode(Schema.parseJson(DurableRequest))
const decodeRequest = Schema.decode(Schema.parseJson(DurableRequest))

const storeFailures =
  (operation: string, timeout: Duration.Duration) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | RunStoreUnavailable, R> =>
    effect.pipe(
      Effect.catchAllDefect((defect) =>
        isStoreDefect(defect)
          ? Effect.fail(new RunStoreUnavailable({ operation, reason: describeStoreDefect(defect) }))
          : Effect.die(defect)
      ),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new RunStoreUnavailable({ operation, reason: `no answer from the store within ${Duration.format(timeout)}` })
      })
    )

/**
 * Builds the service over the engine and the runs table in context (the workflow must be registered with the same
 * engine: the layers below do both).
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine
    const registry = yield* RunRegistry
    const timeout = Duration.decode(options?.storeTimeout ?? Duration.seconds(30))
    const awaitCap = Duration.decode(options?.awaitInterval ?? Duration.seconds(1))
    const withEngine = <A, E>(effect: Effect.Effect<A, E, WorkflowEngine>) =>
      Effect.provideService(effect, WorkflowEngine, engine)

    const lookup = (key: string, operation: string) =>
      Effect.flatMap(registry.lookup(key).pipe(storeFailures(operation, timeout)), (found) =>
        Option.match(found, {
          onNone: () => Effect.fail(new DurableRunNotFound({ key })),
          onSome: Effect.succeed
        })
      )

    /** (Re)sends the execution: idempotent, the engine keeps one execution per id. */
    const launch = (key: string, request: DurableRequest, operation: string) =>
      withEngine(RunWorkflow.execute({ key, request }, { discard: true })).pipe(storeFailures(operation, timeout))

    const start = Effect.fn("DurableRuns.start")(function* (key: string, request: DurableRequest) {
      yield* Effect.annotateCurrentSpan({ "zapier.durable.key": key, "zapier.app": request.app })
      const json = yield* Effect.orDie(encodeRequest(request))
      const executionId = yield* RunWorkflow.executionId({ key, request })
      const registration: Registration = {
        key,
        executionId,
        fingerprint: yield* fingerprint(json),
        request: json,
        createdAt: yield* Clock.currentTimeMillis
      }
      const stored = yield* registry.register(registration).pipe(storeFailures("DurableRuns.start", timeout))
      if (stored.fingerprint !== registration.fingerprint) return yield* new DurableRunConflict({ key })
      yield* launch(key, request, "DurableRuns.start")
      return executionId
    })

    const toStatus = (
      key: string,
      executionId: string,
      runId: ActionRunId | undefined,
      polled: Workflow.Result<RunResult, RunFailure> | undefined
    ): Effect.Effect<Status> => {
      if (polled === undefined || polled._tag === "Suspended") {
        return Effect.succeed({ _tag: "Running", executionId, runId })
      }
      const exit = polled.exit
      if (Exit.isSuccess(exit)) return Effect.succeed({ _tag: "Succeeded", executionId, result: exit.value })
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) return Effect.succeed({ _tag: "Failed", executionId, error: failure.value })
      if (Cause.isInterruptedOnly(exit.cause)) {
        return Effect.succeed({ _tag: "Failed", executionId, error: new DurableRunInterrupted({ key }) })
      }
      // The run died of the store failing (an engine that gave up on it): a typed outcome, not a defect.
      const defect = Cause.squash(exit.cause)
      if (isStoreDefect(defect)) {
        return Effect.succeed({
          _tag: "Failed",
          executionId,
          error: new RunStoreUnavailable({ operation: "the run", reason: describeStoreDefect(defect) })
        })
      }
      // A defect inside the run (a bug): surfaced as such, not as a typed outcome.
      return Effect.die(defect)
    }

    const read = (registration: Registration, operation: string) =>
      withEngine(RunWorkflow.poll(registration.executionId)).pipe(
        Effect.flatMap((polled) => toStatus(registration.key, registration.executionId, registration.runId, polled)),
        storeFailures(operation, timeout)
      )

    const result = Effect.fn("DurableRuns.result")(function* (key: string) {
      yield* Effect.annotateCurrentSpan({ "zapier.durable.key": key })
      return yield* read(yield* lookup(key, "DurableRuns.result"), "DurableRuns.result")
    })

    const awaitRun = Effect.fn("DurableRuns.await")(function* (key: string) {
      yield* Effect.annotateCurrentSpan({ "zapier.durable.key": key })
      // A read that fails is tried again until the store has not answered for `storeTimeout`.
      const patient = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.retry(effect, {
          schedule: Schedule.spaced(Duration.millis(250)).pipe(Schedule.upTo(timeout)),
          while: (e) => e._tag === "RunStoreUnavailable"
        })
      const registration = yield* patient(lookup(key, "DurableRuns.await"))
      const driver = yield* Schedule.driver(
        Schedule.exponential(Duration.millis(100), 1.5).pipe(Schedule.union(Schedule.spaced(awaitCap)))
      )
      let relaunched = false
      while (true) {
        const status = yield* patient(read(registration, "DurableRuns.await"))
        if (status._tag === "Succeeded") return status.result
        if (status._tag === "Failed") return yield* Effect.fail(status.error)
        if (!relaunched) {
          // A start cut short between the registration and the engine's write leaves a registered run the engine
          // never saw: send it again (a no-op for an execution the engine has).
          relaunched = true
          const request = yield* Effect.orDie(decodeRequest(registration.request))
          yield* patient(launch(key, request, "DurableRuns.await"))
        }
        yield* Effect.orDie(driver.next(undefined))
      }
    })

    const interrupt = Effect.fn("DurableRuns.interrupt")(function* (key: string) {
      yield* Effect.annotateCurrentSpan({ "zapier.durable.key": key })
      const registration = yield* lookup(key, "DurableRuns.interrupt")
      yield* withEngine(RunWorkflow.interrupt(registration.executionId)).pipe(
        storeFailures("DurableRuns.interrupt", timeout)
      )
    })

    const complete = Effect.fn("DurableRuns.complete")(function* (state: RunSucceeded | RunFailed) {
      yield* Effect.annotateCurrentSpan({ "zapier.run_id": state.runId })
      const found = yield* registry
        .findByRunId(state.runId as ActionRunId)
        .pipe(storeFailures("DurableRuns.complete", timeout))
      if (Option.isNone(found)) return false
      const token = DurableDeferred.tokenFromExecutionId(Outcome, {
        workflow: RunWorkflow,
        executionId: found.value.executionId
      })
      yield* withEngine(DurableDeferred.succeed(Outcome, { token, value: state })).pipe(
        storeFailures("DurableRuns.complete", timeout)
      )
      return true
    })

    return DurableRuns.of({ start, result, await: awaitRun, interrupt, complete })
  })

/**
 * The service alone, over a `WorkflowEngine` with the workflow registered and a `RunRegistry` (for engines of your
 * own; the layers in `DurableLayers` assemble everything).
 * @since 0.1.0
 * @category layers
 */
export const layerWithoutEngine = (options?: Options): Layer.Layer<DurableRuns, never, WorkflowEngine | RunRegistry> =>
  Layer.effect(DurableRuns, make(options))
