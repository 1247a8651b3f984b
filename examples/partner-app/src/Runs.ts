/**
 * Runs that outlive the request that starts them, on `@effect-zapier/workflow`'s `DurableRuns`: `start` resolves
 * the connection (so a missing one is still answered at once with a Connect link), starts a durable run under a
 * fresh key, waits until Zapier has created the run (or refused it), and records it; `get` reads the record and,
 * for a run still pending, asks `DurableRuns` whether it ended. The durable engine awaits every run, survives
 * restarts (its journal is SQLite in the data folder) and never creates a run twice, so this module keeps no
 * awaiting fibers and no resume logic of its own. Zapier's intermediate statuses (`waiting`, `queued`, `running`)
 * reach the record through a decorator over `ActionRuns` ({@link layerStatusTracking}), which the durable run's
 * polls go through.
 */
import { ActionRuns, type Domain, EmbeddedActions, Errors } from "@effect-zapier/core"
import { DurableRuns } from "@effect-zapier/workflow"
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { type Outcome, RunRecord, RunStore } from "./RunStore.js"

/** An app the partner offers to its users, and whether it needs a connection (apps without auth do not). */
export interface OfferedApp {
  readonly id: Domain.AppId
  readonly requiresAuth: boolean
}

/** The apps this partner offers, in order. */
export class OfferedApps extends Context.Tag("partner-app/OfferedApps")<OfferedApps, ReadonlyArray<OfferedApp>>() {}

/** What `start` can fail with. */
export type StartError =
  | Errors.RequestError
  | Errors.ConnectionRequired
  | Errors.ActionNotFound
  | Errors.InvalidInputs
  | Errors.RunOutcomeUnknown
  | Errors.StoreUnavailable

export interface StartRequest {
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly actionType?: Domain.ActionType | undefined
  readonly inputs: Readonly<Record<string, unknown>>
}

export interface Service {
  /** Starts the durable run for `user`, waits for Zapier's run id, and records the run. */
  readonly start: (user: Domain.EndUser, request: StartRequest) => Effect.Effect<RunRecord, StartError>
  /** The user's run (none for another user's), with its end when the durable run has one. */
  readonly get: (
    user: Domain.EndUser,
    runId: Domain.ActionRunId
  ) => Effect.Effect<Option.Option<RunRecord>, Errors.StoreUnavailable>
  /**
   * The connection `start` and the fields use: `null` for an app without auth. Without a valid connection,
   * `ConnectionRequired` with a Connect link (one connect token), or without one for `mintLink: false`.
   */
  readonly connectionFor: (
    user: Domain.EndUser,
    app: Domain.AppId,
    options?: { readonly mintLink?: boolean | undefined }
  ) => Effect.Effect<
    Domain.ConnectionId | null,
    Errors.RequestError | Errors.ConnectionRequired | Errors.StoreUnavailable
  >
}

export class Runs extends Context.Tag("partner-app/Runs")<Runs, Service>() {}

/** The durable store failing is this app's store failing. */
const storeFailed = (operation: string) => (e: { readonly message: string }) =>
  new Errors.StoreUnavailable({ operation, reason: e.message })

/** 32 random bytes, base64url: the durable run's key (this app starts a new run per request). */
const freshKey = () => {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  return `run-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`
}

export const make = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const durable = yield* DurableRuns.DurableRuns
  const store = yield* RunStore
  const offered = yield* OfferedApps

  const requiresAuth = (app: Domain.AppId) => offered.find((a) => a.id === app)?.requiresAuth ?? true

  const connectionFor = (
    user: Domain.EndUser,
    app: Domain.AppId,
    options?: { readonly mintLink?: boolean | undefined }
  ) =>
    requiresAuth(app) ? Effect.map(actions.ensureConnection(user, app, options), (c) => c.id) : Effect.succeed(null)

  /** The durable run's state as the record has it: still pending, or its end. */
  const ending = (status: DurableRuns.Status): Option.Option<Outcome> => {
    switch (status._tag) {
      case "Running":
        return Option.none()
      case "Succeeded":
        return Option.some({ _tag: "Succeeded", results: status.result.results })
      case "Failed":
        return Option.some({
          _tag: "Failed",
          status: status.error._tag === "ActionRunFailed" ? "error" : "unknown",
          tag: status.error._tag,
          message: status.error.message
        })
    }
  }

  /** Waits until the durable run has created Zapier's run (its id), or ended before (refused, bad inputs, …). */
  const created = (key: string): Effect.Effect<DurableRuns.Status, Errors.StoreUnavailable> =>
    Effect.flatMap(durable.result(key).pipe(Effect.mapError(storeFailed("start run"))), (status) =>
      status._tag !== "Running" || status.runId !== undefined
        ? Effect.succeed(status)
        : Effect.zipRight(Effect.sleep(Duration.millis(50)), created(key))
    )

  const start = Effect.fn("PartnerApp.startRun")(function* (user: Domain.EndUser, request: StartRequest) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": request.app, "zapier.action": request.action })
    const connection = yield* connectionFor(user, request.app)
    const key = freshKey()
    yield* durable
      .start(key, {
        user,
        app: request.app,
        action: request.action,
        actionType: request.actionType,
        inputs: request.inputs,
        connection
      })
      .pipe(Effect.mapError(storeFailed("start run")))
    const status = yield* created(key).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(60),
        onTimeout: () =>
          new Errors.StoreUnavailable({ operation: "start run", reason: "the run was not created within 60 s" })
      })
    )
    const runId =
      status._tag === "Running"
        ? status.runId
        : status._tag === "Succeeded"
          ? status.result.runId
          : status.error._tag === "ActionRunFailed" || status.error._tag === "PollTimeout"
            ? status.error.runId
            : undefined
    if (runId === undefined && status._tag === "Failed") {
      // ended before Zapier created a run: the caller gets the error itself (bad inputs, no such action, …)
      const error = status.error
      return yield* Errors.isZapierError(error) && error._tag !== "ActionRunFailed" && error._tag !== "PollTimeout"
        ? Effect.fail(error as StartError)
        : Effect.fail(new Errors.StoreUnavailable({ operation: "start run", reason: error.message }))
    }
    yield* Effect.annotateCurrentSpan({ "zapier.run_id": runId })
    const now = yield* Clock.currentTimeMillis
    const record = RunRecord.make({
      runId: runId as Domain.ActionRunId,
      key,
      user,
      app: request.app,
      action: request.action,
      state: "pending",
      status: "created",
      createdAt: now,
      updatedAt: now
    })
    yield* store.insert(record)
    const ended = ending(status)
    if (Option.isSome(ended)) yield* store.finish(record.runId, ended.value)
    return Option.getOrElse(yield* store.find(user, record.runId), () => record)
  })

  const get = Effect.fn("PartnerApp.getRun")(function* (user: Domain.EndUser, runId: Domain.ActionRunId) {
    yield* Effect.annotateCurrentSpan("zapier.run_id", runId)
    const found = yield* store.find(user, runId)
    if (Option.isNone(found) || found.value.state !== "pending") return found
    const status = yield* durable.result(found.value.key).pipe(Effect.mapError(storeFailed("read run")))
    const ended = ending(status)
    if (Option.isNone(ended)) return found
    yield* store.finish(runId, ended.value)
    return yield* store.find(user, runId)
  })

  return Runs.of({ start, get, connectionFor })
})

export const layer: Layer.Layer<
  Runs,
  never,
  EmbeddedActions.EmbeddedActions | DurableRuns.DurableRuns | RunStore | OfferedApps
> = Layer.effect(Runs, make)

/**
 * `ActionRuns` that also records each pending status it reads into the `RunStore`, so the page sees `waiting`,
 * `queued`, `running` as they happen. The same decorator trick works for any per-poll concern.
 */
export const layerStatusTracking: Layer.Layer<ActionRuns.ActionRuns, never, ActionRuns.ActionRuns | RunStore> =
  Layer.effect(
    ActionRuns.ActionRuns,
    Effect.gen(function* () {
      const runs = yield* ActionRuns.ActionRuns
      const store = yield* RunStore
      return ActionRuns.ActionRuns.of({
        create: runs.create,
        get: (user, runId) =>
          runs
            .get(user, runId)
            .pipe(
              Effect.tap((state) =>
                state._tag === "RunPending"
                  ? store
                      .setStatus(runId, state.status)
                      .pipe(
                        Effect.catchAll((e) =>
                          Effect.logWarning("could not record a run's status").pipe(
                            Effect.annotateLogs("error", e._tag)
                          )
                        )
                      )
                  : Effect.void
              )
            )
      })
    })
  )
