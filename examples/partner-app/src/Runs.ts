/**
 * Runs that outlive the request that starts them: `start` creates the run (`EmbeddedActions.start`), records it,
 * and awaits it in a background fiber that writes the result (or the error) to the `RunStore`; `get` reads the
 * record and, for a run still pending that no fiber is awaiting (after a restart, or after a `PollTimeout`),
 * resumes awaiting it. Zapier's intermediate statuses (`waiting`, `queued`, `running`) reach the record through
 * a decorator over `ActionRuns` ({@link layerStatusTracking}).
 */
import { ActionRuns, type Domain, EmbeddedActions, type Errors } from "@effect-zapier/core"
import { Clock, Context, Effect, Layer, Option, type Tracer } from "effect"
import { RunRecord, RunStore } from "./RunStore.js"

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
  /** Creates the run for `user`, records it and awaits it in the background. */
  readonly start: (user: Domain.EndUser, request: StartRequest) => Effect.Effect<RunRecord, StartError>
  /** The user's run (none for another user's), resuming the await of a pending run nobody is awaiting. */
  readonly get: (
    user: Domain.EndUser,
    runId: Domain.ActionRunId
  ) => Effect.Effect<Option.Option<RunRecord>, Errors.StoreUnavailable>
  /** The connection `start` and the fields use: `null` for an app without auth. */
  readonly connectionFor: (
    user: Domain.EndUser,
    app: Domain.AppId
  ) => Effect.Effect<
    Domain.ConnectionId | null,
    Errors.RequestError | Errors.ConnectionRequired | Errors.StoreUnavailable
  >
}

export class Runs extends Context.Tag("partner-app/Runs")<Runs, Service>() {}

type AwaitError = Effect.Effect.Error<ReturnType<EmbeddedActions.Service["await"]>>

/** Errors after which the run may still be running at Zapier: it stays pending and a later `get` resumes it. */
const stillRunning = new Set(["PollTimeout", "RateLimited", "ZapierUnavailable"])

export const make = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const store = yield* RunStore
  const offered = yield* OfferedApps
  // Watchers run in the layer's scope: they outlive requests, and stop (interrupted) when the app stops.
  const scope = yield* Effect.scope
  const watching = new Set<string>()

  const requiresAuth = (app: Domain.AppId) => offered.find((a) => a.id === app)?.requiresAuth ?? true

  const record = (runId: Domain.ActionRunId, exit: Effect.Effect<Domain.RunResult, AwaitError>) =>
    exit.pipe(
      Effect.matchEffect({
        onSuccess: (result) => store.finish(runId, { _tag: "Succeeded", results: result.results }),
        onFailure: (error) =>
          stillRunning.has(error._tag)
            ? Effect.logInfo("run still pending; the next read resumes it").pipe(
                Effect.annotateLogs("error", error._tag)
              )
            : store.finish(runId, {
                _tag: "Failed",
                status: error._tag === "ActionRunFailed" ? "error" : "unknown",
                tag: error._tag,
                message: error.message
              })
      })
    )

  /** Awaits the run in a fiber of its own (one per run), under a root span linked to the caller's. */
  const watch = (user: Domain.EndUser, runId: Domain.ActionRunId) =>
    Effect.gen(function* () {
      if (watching.has(runId)) return
      watching.add(runId)
      const caller = yield* Effect.option(Effect.currentSpan)
      yield* record(runId, actions.await(user, runId)).pipe(
        Effect.catchAll((e) =>
          Effect.logWarning("could not record the run's end").pipe(Effect.annotateLogs("error", e._tag))
        ),
        Effect.ensuring(Effect.sync(() => watching.delete(runId))),
        Effect.withSpan("PartnerApp.awaitRun", {
          root: true,
          attributes: { "zapier.run_id": runId },
          links: Option.match(caller, {
            onNone: () => [],
            onSome: (span): Array<Tracer.SpanLink> => [{ _tag: "SpanLink", span, attributes: {} }]
          })
        }),
        Effect.forkIn(scope)
      )
    })

  const connectionFor = (user: Domain.EndUser, app: Domain.AppId) =>
    requiresAuth(app) ? Effect.map(actions.ensureConnection(user, app), (c) => c.id) : Effect.succeed(null)

  const start = Effect.fn("PartnerApp.startRun")(function* (user: Domain.EndUser, request: StartRequest) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": request.app, "zapier.action": request.action })
    const connection = yield* connectionFor(user, request.app)
    const handle = yield* actions.start({
      user,
      app: request.app,
      action: request.action,
      actionType: request.actionType,
      inputs: request.inputs,
      connection
    })
    const now = yield* Clock.currentTimeMillis
    const created = RunRecord.make({
      runId: handle.runId,
      user,
      app: request.app,
      action: request.action,
      state: "pending",
      status: "created",
      createdAt: now,
      updatedAt: now
    })
    yield* store.insert(created)
    yield* watch(user, handle.runId)
    return created
  })

  const get = Effect.fn("PartnerApp.getRun")(function* (user: Domain.EndUser, runId: Domain.ActionRunId) {
    yield* Effect.annotateCurrentSpan("zapier.run_id", runId)
    const found = yield* store.find(user, runId)
    if (Option.isSome(found) && found.value.state === "pending") yield* watch(user, runId)
    return found
  })

  return Runs.of({ start, get, connectionFor })
})

export const layer: Layer.Layer<Runs, never, EmbeddedActions.EmbeddedActions | RunStore | OfferedApps> = Layer.scoped(
  Runs,
  make
)

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
