/**
 * Area: action runs (create, read): the model's scripted run lifecycles, their routes, core's `ActionRuns` in
 * memory, and the control methods that script and inspect runs.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { ActionRuns, Domain, type Errors } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { ClientKit } from "../client.js"
import { ApiFailure } from "../model/failures.js"
import type {
  ConnectionRecord,
  GateRecord,
  HeldRun,
  Kit,
  Outcome,
  RunErrorView,
  RunRecord,
  RunView,
  State
} from "../model/state.js"
import {
  appendLedger,
  misuse,
  pruneRuns,
  randomUuid,
  retained,
  sameUser,
  scriptKey,
  seconds,
  userKey
} from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { Authentication, describeIssue, Inputs, isObject, json, OptionalString } from "../server/kit.js"
import type * as FZ from "../types.js"

/** The endpoints of this area, as the ledger and fault rules name them. */
export const endpoints = {
  createRun: "POST /v2/action-runs/",
  getRun: "GET /v2/action-runs/{id}/"
} as const

/**
 * A run as the model holds it.
 * @since 0.1.0
 * @category control
 */
export interface RunInfo {
  readonly id: Domain.ActionRunId
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly connection: Domain.ConnectionId | null
  readonly inputs: Readonly<Record<string, unknown>>
  readonly createdAt: number
  /** When it finishes (epoch millis), or `undefined` for a run that stays pending. */
  readonly finishesAt: number | undefined
  readonly status: FZ.RunStatus
}

/**
 * A gate of {@link RunsControl.holdRuns}: the runs of its action created while it is closed read as pending
 * (`waiting`) until it is released, whatever their script says, so a test sees a run waiting on any machine speed.
 * @since 0.3.0
 * @category control
 */
export interface RunGate {
  /**
   * Opens the gate: each run it held follows its script from now on, ending at its scripted end or now, whichever is
   * later (and its run callback, if any, is posted then); runs created from now on are not held. A run held by two
   * gates waits for both. Releasing twice does nothing more.
   */
  readonly release: Effect.Effect<void>
  /**
   * Waits for the first read (`GET /v2/action-runs/{id}/`, a long-poll read, or `ActionRuns.get` in memory) of a run
   * this gate holds, answered while the gate was closed, hence pending: the client has seen the run waiting. Returns
   * that run's id. Only the owner's reads count (another user's read is a 404). Wait on it with a generous timeout
   * that only catches a hang.
   */
  readonly awaitRead: Effect.Effect<Domain.ActionRunId>
}

/** The control methods of this area. */
export interface RunsControl {
  /**
   * Scripts the next runs of an action: each new run takes the next script; the last one stays for every later
   * run. Replaces earlier scripting of the action.
   */
  readonly scriptRuns: (
    app: string,
    action: string,
    ...scripts: ReadonlyArray<FZ.RunScript>
  ) => Effect.Effect<void, Errors.NotFound>
  /**
   * Holds the runs of an action created from now until the returned gate is released: they read as pending
   * (`waiting` over HTTP, `RunPending` in memory), then end as their script says (see {@link RunGate}). Works the
   * same in `FakeZapier.layer` and over `FakeZapierServer`. An unknown app or action is `NotFound`.
   */
  readonly holdRuns: (app: string, action: string) => Effect.Effect<RunGate, Errors.NotFound>
  /** A run as the model holds it (any user's); a run past the retention (`Seed.retention`) is not found. */
  readonly run: (runId: string) => Effect.Effect<RunInfo, Errors.NotFound>
  /** Every run the model keeps (`Seed.retention`: pending ones, finished ones within bounds), in creation order. */
  readonly runs: Effect.Effect<ReadonlyArray<RunInfo>>
}

/**
 * Zapier's documented callback_url rules: HTTPS, at most 2048 characters, no private or loopback host (a loopback
 * one, http or https, only when the seed allows it for a test).
 */
const callbackUrlProblem = (url: string, allowLoopback: boolean): string | undefined => {
  if (url.length > 2048) return "callback_url must be at most 2048 characters."
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "callback_url must be an absolute URL."
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, "")
  const loopback = host === "localhost" || host === "::1" || /^127\./.test(host)
  if (allowLoopback && loopback && (parsed.protocol === "http:" || parsed.protocol === "https:")) return undefined
  if (parsed.protocol !== "https:") return "callback_url must use HTTPS."
  if (
    host === "localhost" ||
    host === "::1" ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host)
  ) {
    return "callback_url must point to a public address."
  }
  return undefined
}

export interface CreateRunInput {
  readonly action: string
  readonly authentication: string | null
  readonly inputs: Readonly<Record<string, unknown>>
  readonly callbackUrl?: string | undefined
}

const runStatus = (outcome: Outcome, now: number): FZ.RunStatus =>
  outcome._tag === "Pending" || now < outcome.at ? "waiting" : outcome._tag === "Succeed" ? "success" : "error"

const toRunInfo = (r: RunRecord, now: number): RunInfo => ({
  id: r.id,
  user: r.user,
  app: r.app,
  action: r.action,
  connection: r.connection,
  inputs: r.inputs,
  createdAt: r.createdAt,
  finishesAt: r.outcome._tag === "Pending" ? undefined : r.outcome.at,
  status: runStatus(r.outcome, now)
})

/** A run that ends and has a callback URL, handed to the callbacks area. */
export interface Ended {
  readonly runId: Domain.ActionRunId
  readonly url: string
  readonly at: number
  readonly status: "success" | "error"
  readonly results: ReadonlyArray<unknown>
  readonly errors: ReadonlyArray<RunErrorView>
}

/** What is handed to the callbacks area for a run with a callback URL that ends. */
const endedOf = (runId: Domain.ActionRunId, url: string, outcome: Outcome): Ended | undefined =>
  outcome._tag === "Pending"
    ? undefined
    : {
        runId,
        url,
        at: outcome.at,
        status: outcome._tag === "Succeed" ? "success" : "error",
        results: outcome._tag === "Succeed" ? outcome.results : [],
        errors: outcome._tag === "Fail" ? outcome.errors : []
      }

/** The model side: creating and reading runs, and the run controls; `onCallback` posts a run's callback. */
export const model = (kit: Kit, onCallback: (run: Ended) => Effect.Effect<void> = () => Effect.void) => {
  const { now, state, settings } = kit
  const findApp = (method: string, app: string) =>
    Effect.flatMap(Ref.get(state), (s) => {
      const found = s.apps.find((a) => a.id === app)
      return found ? Effect.succeed(found) : Effect.fail(misuse(method, `app ${app}`))
    })

  const createRun = (user: Domain.EndUser, input: CreateRunInput) =>
    Effect.gen(function* () {
      const t = yield* now
      const s = yield* Ref.get(state)
      const key = userKey(user)
      const issued = HashMap.get(s.actionIds, input.action)
      if (Option.isNone(issued) || issued.value.userKey !== key) {
        return yield* Effect.fail(
          ApiFailure.invalid(
            "Unknown action id. Look the action up (GET /v2/actions) before every run and send the id it returns.",
            "action"
          )
        )
      }
      const action = issued.value.action
      const app = s.apps.find((a) => a.id === action.app)
      const definition = app?.actions.find((a) => a.key === action.key)
      if (app === undefined || definition === undefined) {
        return yield* Effect.fail(ApiFailure.invalid("The action no longer exists.", "action"))
      }
      let connection: ConnectionRecord | undefined
      if (input.authentication !== null) {
        const found = HashMap.get(s.connections, input.authentication)
        if (Option.isNone(found) || found.value.userKey !== key || found.value.app !== app.id) {
          return yield* Effect.fail(
            ApiFailure.invalid(
              `Authentication ${input.authentication} was not found among this user's connections to ${app.id}.`,
              "authentication"
            )
          )
        }
        connection = found.value
      } else if (app.requiresAuth) {
        return yield* Effect.fail(ApiFailure.invalid(`${app.title} requires an authentication.`, "authentication"))
      }
      if (input.callbackUrl !== undefined) {
        const problem = callbackUrlProblem(input.callbackUrl, kit.settings.callbacks.allowLoopback)
        if (problem !== undefined) return yield* Effect.fail(ApiFailure.invalid(problem, "callback_url"))
      }
      const runId = Domain.ActionRunId.make(yield* randomUuid)
      const sk = scriptKey(app.id, action.key)
      const queued = Option.getOrUndefined(HashMap.get(s.scripts, sk))
      const script = queued?.[0] ?? definition.script
      let outcome: Outcome
      if (connection?.isExpired) {
        outcome = {
          _tag: "Fail",
          at: t,
          errors: [
            {
              code: "authentication",
              title: "Authentication expired",
              detail: `The connection ${connection.id} has expired; reconnect it with Connect UI (reconnect_id).`,
              delaySeconds: undefined
            }
          ]
        }
      } else if (script._tag === "Pending") {
        outcome = { _tag: "Pending" }
      } else if (script._tag === "Succeed") {
        const results =
          typeof script.results === "function"
            ? yield* Effect.try({
                try: () =>
                  (script.results as (i: Readonly<Record<string, unknown>>) => ReadonlyArray<unknown>)(input.inputs),
                catch: (e) => e
              }).pipe(Effect.orDie)
            : script.results
        outcome = { _tag: "Succeed", at: t + Duration.toMillis(script.after), results }
      } else {
        outcome = {
          _tag: "Fail",
          at: t + Duration.toMillis(script.after),
          errors: script.errors.map((e) => ({
            code: e.code,
            title: e.title,
            detail: e.detail,
            delaySeconds: e.delay !== undefined ? seconds(e.delay) : undefined
          }))
        }
      }
      const run: RunRecord = {
        id: runId,
        user,
        app: app.id,
        action: action.key,
        actionId: action.id,
        connection: connection?.id ?? null,
        inputs: input.inputs,
        createdAt: t,
        outcome,
        seq: s.seq + 1
      }
      // In the same update as the insert, so a release cannot slip between deciding to hold the run and holding it.
      const held = yield* Ref.modify(state, (s) => {
        const gates = s.runGates.filter((g) => g.app === app.id && g.action === action.key)
        const hold: HeldRun | undefined =
          gates.length === 0 ? undefined : { gates, outcome, callbackUrl: input.callbackUrl }
        const next = appendLedger(
          pruneRuns(
            {
              ...s,
              seq: s.seq + 1,
              runs: HashMap.set(s.runs, runId, hold === undefined ? run : { ...run, outcome: { _tag: "Pending" } }),
              heldRuns: hold === undefined ? s.heldRuns : HashMap.set(s.heldRuns, runId, hold),
              scripts:
                queued !== undefined && queued.length > 1 ? HashMap.set(s.scripts, sk, queued.slice(1)) : s.scripts
            },
            t,
            settings
          ),
          "runs",
          {
            at: t,
            user,
            runId,
            app: app.id,
            action: action.key,
            actionId: action.id,
            connection: run.connection,
            inputs: input.inputs
          }
        )
        return [hold !== undefined, next] as const
      })
      const ended = input.callbackUrl === undefined || held ? undefined : endedOf(runId, input.callbackUrl, outcome)
      if (ended !== undefined) yield* onCallback(ended)
      return runId
    })

  const getRun = (user: Domain.EndUser, runId: string) =>
    Effect.gen(function* () {
      const t = yield* now
      const s = yield* Ref.get(state)
      const run = HashMap.get(s.runs, runId)
      if (Option.isNone(run) || !sameUser(run.value.user, user) || !retained(run.value, t, settings)) {
        return yield* Effect.fail(ApiFailure.notFound(`run ${runId}`))
      }
      const outcome = run.value.outcome
      const status = runStatus(outcome, t)
      yield* Ref.update(state, (s) => appendLedger(s, "polls", { at: t, user, runId: run.value.id, status }))
      const held = HashMap.get(s.heldRuns, runId)
      if (Option.isSome(held)) {
        for (const gate of held.value.gates) yield* Deferred.succeed(gate.read, run.value.id)
      }
      return {
        id: run.value.id,
        status,
        results: status === "success" && outcome._tag === "Succeed" ? outcome.results : [],
        errors: status === "error" && outcome._tag === "Fail" ? outcome.errors : []
      } satisfies RunView
    })

  /** Opens a gate: its runs held by no other gate get their scripted outcome, no earlier than now. */
  const release = (gate: GateRecord) =>
    Effect.gen(function* () {
      const t = yield* now
      const ended = yield* Ref.modify(state, (s): readonly [ReadonlyArray<Ended>, State] => {
        if (!s.runGates.includes(gate)) return [[], s]
        let runs = s.runs
        let heldRuns = s.heldRuns
        const ended: Array<Ended> = []
        for (const [runId, held] of s.heldRuns) {
          if (!held.gates.includes(gate)) continue
          const gates = held.gates.filter((g) => g !== gate)
          if (gates.length > 0) {
            heldRuns = HashMap.set(heldRuns, runId, { ...held, gates })
            continue
          }
          heldRuns = HashMap.remove(heldRuns, runId)
          const outcome: Outcome =
            held.outcome._tag === "Pending" ? held.outcome : { ...held.outcome, at: Math.max(held.outcome.at, t) }
          const run = HashMap.get(runs, runId)
          if (Option.isNone(run)) continue
          runs = HashMap.set(runs, runId, { ...run.value, outcome })
          const callback = held.callbackUrl === undefined ? undefined : endedOf(run.value.id, held.callbackUrl, outcome)
          if (callback !== undefined) ended.push(callback)
        }
        return [ended, { ...s, runs, heldRuns, runGates: s.runGates.filter((g) => g !== gate) }]
      })
      yield* Deferred.succeed(gate.released, undefined)
      yield* Effect.forEach(ended, onCallback, { discard: true })
    })

  /**
   * When `runId` ends by its script (for a held run, when it would have, had no gate held it); undefined for a run
   * scripted to stay pending, or an unknown one.
   */
  const scriptedEnd = (runId: string): Effect.Effect<number | undefined> =>
    Effect.map(Ref.get(state), (s) => {
      const held = HashMap.get(s.heldRuns, runId)
      const outcome = Option.isSome(held)
        ? held.value.outcome
        : Option.getOrUndefined(HashMap.get(s.runs, runId))?.outcome
      return outcome === undefined || outcome._tag === "Pending" ? undefined : outcome.at
    })

  /** Completes when every gate holding `runId` has opened; never, for a run no gate holds. */
  const awaitRelease = (runId: string): Effect.Effect<void> =>
    Effect.flatMap(Ref.get(state), (s) => {
      const held = HashMap.get(s.heldRuns, runId)
      return Option.isNone(held)
        ? Effect.never
        : Effect.forEach(held.value.gates, (g) => Deferred.await(g.released), { discard: true })
    })

  const control: RunsControl = {
    holdRuns: Effect.fn("FakeZapier.holdRuns")(function* (app: string, action: string) {
      const record = yield* findApp("holdRuns", app)
      const definition = record.actions.find((a) => a.key === action)
      if (definition === undefined) return yield* misuse("holdRuns", `action ${action} of app ${app}`)
      const gate: GateRecord = {
        app: record.id,
        action: definition.key,
        read: yield* Deferred.make<Domain.ActionRunId>(),
        released: yield* Deferred.make<void>()
      }
      yield* Ref.update(state, (s) => ({ ...s, runGates: [...s.runGates, gate] }))
      return {
        release: release(gate).pipe(Effect.withSpan("FakeZapier.RunGate.release")),
        awaitRead: Deferred.await(gate.read)
      } satisfies RunGate
    }),
    scriptRuns: Effect.fn("FakeZapier.scriptRuns")(function* (
      app: string,
      action: string,
      ...scripts: ReadonlyArray<FZ.RunScript>
    ) {
      const record = yield* findApp("scriptRuns", app)
      if (!record.actions.some((a) => a.key === action)) {
        return yield* misuse("scriptRuns", `action ${action} of app ${app}`)
      }
      yield* Ref.update(state, (s) => ({
        ...s,
        scripts:
          scripts.length === 0
            ? HashMap.remove(s.scripts, scriptKey(app, action))
            : HashMap.set(s.scripts, scriptKey(app, action), scripts)
      }))
    }),
    run: Effect.fn("FakeZapier.run")(function* (runId: string) {
      const t = yield* now
      const run = HashMap.get((yield* Ref.get(state)).runs, runId)
      if (Option.isNone(run) || !retained(run.value, t, settings)) return yield* misuse("run", `run ${runId}`)
      return toRunInfo(run.value, t)
    }),
    runs: Effect.gen(function* () {
      const t = yield* now
      const s = yield* Ref.get(state)
      return Array.from(HashMap.values(s.runs))
        .filter((r) => retained(r, t, settings))
        .sort((a, b) => a.seq - b.seq)
        .map((r) => toRunInfo(r, t))
    }).pipe(Effect.withSpan("FakeZapier.runs"))
  }
  return { createRun, getRun, awaitRelease, scriptedEnd, control }
}

/** The model side of this area. */
export type Model = ReturnType<typeof model>

/** The API schema's body: `{data: {action, authentication, inputs, callback_url?}}`. */
const DataRunBody = Schema.Struct({
  data: Schema.Struct({
    action: Schema.String,
    authentication: Authentication,
    inputs: Inputs,
    callback_url: OptionalString
  })
})

/** The guides' body: `{action, authentication, input, callback_url?}`. */
const FlatRunBody = Schema.Struct({
  action: Schema.String,
  authentication: Authentication,
  input: Inputs,
  callback_url: OptionalString
})

/** The create and read endpoints. */
export const routes = (server: ServerKit, m: Model): Routes => {
  const { api, options } = server
  const runBody = options.runBody ?? "both"

  const createRun = api(endpoints.createRun, (user) =>
    Effect.gen(function* () {
      const req = yield* HttpServerRequest.HttpServerRequest
      const text = yield* Effect.orElseSucceed(req.text, () => "")
      const parsed = Either.try(() => JSON.parse(text) as unknown)
      if (Either.isLeft(parsed) || !isObject(parsed.right)) {
        return yield* Effect.fail(ApiFailure.parseError())
      }
      const body = parsed.right
      const shape = isObject(body.data) ? "data" : "action" in body ? "flat" : undefined
      if (shape === undefined || (runBody !== "both" && runBody !== shape)) {
        return yield* Effect.fail(ApiFailure.parseError())
      }
      const input =
        shape === "data"
          ? yield* Schema.decodeUnknown(DataRunBody)(body).pipe(
              Effect.map(({ data }) => ({
                action: data.action,
                authentication: data.authentication,
                inputs: data.inputs,
                callbackUrl: data.callback_url
              }))
            )
          : yield* Schema.decodeUnknown(FlatRunBody)(body).pipe(
              Effect.map((b) => ({
                action: b.action,
                authentication: b.authentication,
                inputs: b.input,
                callbackUrl: b.callback_url
              }))
            )
      const runId = yield* m.createRun(user, input)
      return json({ data: { type: "run", id: runId } })
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.fail(ApiFailure.invalid(`Invalid body: ${describeIssue(e)}`))))
  )

  const pendingStatus = options.pendingStatus ?? "waiting"
  const getRun = api(endpoints.getRun, (user) =>
    Effect.gen(function* () {
      const params = yield* HttpRouter.params
      const id = params.id ?? ""
      const view = yield* m.getRun(user, id)
      let status: string = view.status
      if (view.status === "waiting" && pendingStatus !== "waiting") {
        if (pendingStatus === "queued-then-running") {
          const info = yield* Effect.orDie(m.control.run(id))
          const now = yield* server.model.now
          // Half its scripted life (a run held by holdRuns too: its script's, not its gate's).
          const end = yield* m.scriptedEnd(id)
          const half = end === undefined ? 1000 : (end - info.createdAt) / 2
          status = now - info.createdAt < half ? "queued" : "running"
        } else {
          status = pendingStatus
        }
      }
      return json(
        {
          data: {
            type: "run",
            status,
            results: view.results,
            errors: view.errors.map((e) => ({
              code: e.code,
              title: e.title,
              detail: e.detail ?? "",
              ...(e.delaySeconds !== undefined ? { delay: e.delaySeconds } : {}),
              meta: null
            }))
          }
        },
        view.status === "waiting" ? (options.pendingHttpStatus ?? 200) : 200
      )
    })
  )

  return [
    HttpRouter.makeRoute("POST", "/v2/action-runs/", createRun),
    HttpRouter.makeRoute("GET", "/v2/action-runs/:id/", getRun)
  ]
}

/** A run's view as core's state; `pending` is what a pending one carries (a held long-poll read says so). */
export const toRunState = (
  runId: Domain.ActionRunId,
  view: RunView,
  pending: Partial<Pick<Domain.RunPending, "held" | "retryAfter">> = {}
): Domain.RunState => {
  switch (view.status) {
    case "waiting":
      return new Domain.RunPending({ runId, status: view.status, ...pending })
    case "success":
      return new Domain.RunSucceeded({ runId, results: view.results })
    case "error":
      return new Domain.RunFailed({
        runId,
        errors: view.errors.map((e) =>
          Domain.RunError.make({
            code: e.code,
            title: e.title,
            ...(e.detail !== undefined ? { detail: e.detail } : {}),
            ...(e.delaySeconds !== undefined ? { delay: Duration.seconds(e.delaySeconds) } : {})
          })
        )
      })
  }
}

/** Core's `ActionRuns`, in memory. */
export const services = (client: ClientKit, m: Model) => {
  const { request } = client

  const runs = ActionRuns.ActionRuns.of({
    create: Effect.fn("ActionRuns.create")(function* (user: Domain.EndUser, run: ActionRuns.CreateRun) {
      return yield* request(
        { method: "POST", endpoint: endpoints.createRun, path: "/v2/action-runs/" },
        user,
        m.createRun(user, {
          action: run.action,
          authentication: run.connection,
          inputs: run.inputs,
          callbackUrl: run.callbackUrl
        }),
        true
      )
    }),
    get: Effect.fn("ActionRuns.get")(function* (user: Domain.EndUser, runId: Domain.ActionRunId) {
      const view = yield* request(
        { method: "GET", endpoint: endpoints.getRun, path: `/v2/action-runs/${runId}/` },
        user,
        m.getRun(user, runId)
      ).pipe(Effect.catchTag("RunOutcomeUnknown", Effect.die))
      return toRunState(runId, view)
    })
  })

  return Context.make(ActionRuns.ActionRuns, runs)
}
