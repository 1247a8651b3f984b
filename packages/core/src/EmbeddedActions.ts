/**
 * The composed program: the five steps of running a Zapier action for an end user.
 *
 * 1. a per-user access token (inside each service call), 2. the user's connections, 3. a Connect link when none is
 * valid and the callback that completes it, 4. a fresh action id and the run, 5. polling to a typed result.
 *
 * @example
 * ```ts
 * import { Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   const result = yield* actions.run({
 *     user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" }),
 *     app: Domain.AppId.make("slack"),
 *     action: Domain.ActionKey.make("send_channel_message"),
 *     inputs: { channel: "#general", text: "Hello" }
 *   })
 *   return result.results
 * })
 * ```
 * @since 0.1.0
 */
import * as Array from "effect/Array"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { ActionCatalog } from "./ActionCatalog.js"
import * as ActionInputs from "./ActionInputs.js"
import { ActionRuns } from "./ActionRuns.js"
import * as Caching from "./Caching.js"
import { ConnectionStore } from "./ConnectionStore.js"
import type { ConnectLinkOptions } from "./Connections.js"
import { Connections } from "./Connections.js"
import * as Domain from "./Domain.js"
import {
  ActionKey,
  ActionType,
  AppId,
  ConnectAttempt,
  type Connection,
  ConnectionId,
  EndUser,
  type RunHandle,
  type RunResult
} from "./Domain.js"
import {
  type ActionNotFound,
  type ActionRunFailed,
  BadRequest,
  ConnectFailed,
  ConnectionRequired,
  type InvalidInputs,
  type PollTimeout,
  type RequestError,
  RunOutcomeUnknown,
  type StoreUnavailable
} from "./Errors.js"
import * as AwaitRun from "./internal/awaitRun.js"
import * as CompleteConnection from "./internal/completeConnection.js"
import * as Economy from "./internal/economy.js"
import * as Expiry from "./internal/expiry.js"
import * as Metrics from "./Metrics.js"
import * as Polling from "./Polling.js"
import { RunCallbacks } from "./RunCallbacks.js"

/**
 * A request to run one action for one end user. Decode untrusted input with `Schema.decodeUnknown(RunRequest)`.
 * @since 0.1.0
 */
export const RunRequest = Schema.Struct({
  user: EndUser,
  app: AppId,
  action: ActionKey,
  /** Defaults to `WRITE`. */
  actionType: Schema.optional(ActionType),
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /**
   * Run with this connection instead of looking one up; `null` for apps without authentication. Zapier's API does
   * not say whether an app needs a login, so without it every app is looked up and, with no valid connection,
   * `ConnectionRequired` is raised: pass `null` for an app you know needs none (e.g. a formatter).
   */
  connection: Schema.optional(Schema.NullOr(ConnectionId)),
  /**
   * Where Connect UI sends the user back when this run has to ask for a connection (the `ConnectionRequired`'s
   * link carries it, with the attempt parameter added, as `ensureConnection`'s `redirectUri` does). Unused when a
   * connection is given or found.
   */
  redirectUri: Schema.optional(Schema.String),
  /** The Connect UI theme of that link (see `redirectUri`). */
  theme: Schema.optional(Schema.String),
  /** Overall deadline of the polling (defaults to the policy's). */
  timeout: Schema.optional(Schema.DurationFromSelf),
  /**
   * An HTTPS URL Zapier posts the finished run to, used as given (nothing awaits it: `run` polls). Leave it out to
   * use the configured run callbacks (`RunCallbacks`), if any.
   */
  callbackUrl: Schema.optional(Schema.String),
  /**
   * With run callbacks configured (`RunCallbacks` in the program's context): `false` creates this run without a
   * callback (it is polled on the plain schedule). Default true.
   */
  callback: Schema.optional(Schema.Boolean),
  /**
   * The routing token of this run's callback URL, instead of a fresh random one: for a caller that routes the
   * bus's event by it (e.g. a durable-run engine naming its own wait). It must be unguessable: anyone who knows it
   * and holds a valid Zapier signature for the run could complete the run's await.
   */
  callbackToken: Schema.optional(Schema.Redacted(Schema.String)),
  /**
   * Check the inputs against the action's input fields before creating the run (`ActionInputs.check`; fails
   * with `InvalidInputs`). Default: on for `WRITE` actions, off for the others.
   */
  validateInputs: Schema.optional(Schema.Boolean),
  /**
   * With the check on, also load every page of the choices of the dropdowns that have a value and refuse values
   * not among them. Off by default: each page is a request out of Zapier's per-minute budget on every run.
   */
  validateChoices: Schema.optional(Schema.Boolean),
  /**
   * When the run fails with an `authentication` error and the connection is no longer valid, mint a reconnect
   * link and carry it in the `ActionRunFailed` (`reconnect`). Off by default (it costs a connect token).
   */
  reconnectLink: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 */
export type RunRequest = typeof RunRequest.Type

/**
 * Options of `ensureConnection`: whether and how a Connect link is minted.
 * @since 0.1.0
 */
export interface EnsureOptions {
  readonly redirectUri?: string | undefined
  readonly theme?: string | undefined
  /**
   * When the connection returned is expiring (Zapier announced its expiry, see `Connection.expiring`), also mint
   * a reconnect link for it (`expiring.reconnect`): one connect token, only then. Default false.
   * @since 0.2.0
   */
  readonly reconnectIfExpiring?: boolean | undefined
  /**
   * When no valid connection is found, mint the Connect link (a reconnect link when it expired) that the
   * `ConnectionRequired` carries: one connect token. `false` fails with `ConnectionRequired` without a `link`
   * (no Zapier request beyond the listing, no Connect attempt opened), for a caller that only shows whether the
   * user is connected and asks for a link when the user chooses to connect. The listing, the stored connection and
   * `reconnectIfExpiring` work as without it. Default true.
   *
   * @example
   * ```ts
   * import { Domain, EmbeddedActions } from "@effect-zapier/core"
   * import { Effect } from "effect"
   *
   * const connected = Effect.gen(function* () {
   *   const actions = yield* EmbeddedActions.EmbeddedActions
   *   const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
   *   return yield* actions.ensureConnection(user, Domain.AppId.make("slack"), { mintLink: false }).pipe(
   *     Effect.as({ connected: true as const }),
   *     // `e.link` is undefined here: nothing was minted.
   *     Effect.catchTag("ConnectionRequired", (e) => Effect.succeed({ connected: false as const, reason: e.reason }))
   *   )
   * })
   * ```
   * @since 0.3.0
   */
  readonly mintLink?: boolean | undefined
}

/**
 * What `resolveRun` reads of a request: `RunRequest`'s fields that choose the connection and the action and say
 * whether the inputs are checked.
 * @since 0.2.0
 * @category resolving
 */
export type ResolveRequest = Pick<
  RunRequest,
  "user" | "app" | "action" | "actionType" | "inputs" | "connection" | "validateInputs" | "validateChoices"
>

/**
 * What a run is created with, resolved the one way every runner does it: the request's connection (else the one
 * `connectionFor` gives), the action of the request's key (`WRITE` unless `actionType` says otherwise), and the
 * inputs checked against its input fields when `validateInputs` says so (by default for `WRITE` actions; the
 * choices too with `validateChoices`). `EmbeddedActions.start` resolves with it (with its caches), and so do
 * durable runs (`@effect-zapier/workflow`).
 *
 * `checkInputs` replaces the plain `ActionInputs.check` (e.g. by one that reuses input fields fetched recently).
 *
 * @example
 * ```ts
 * import { ActionCatalog, Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   const catalog = yield* ActionCatalog.ActionCatalog
 *   const { action, connection } = yield* EmbeddedActions.resolveRun(
 *     {
 *       user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" }),
 *       app: Domain.AppId.make("slack"),
 *       action: Domain.ActionKey.make("send_channel_message"),
 *       inputs: { channel: "#general", text: "Hello" }
 *     },
 *     { catalog, connectionFor: actions.ensureConnection }
 *   )
 *   return { actionId: action.id, connection }
 * })
 * ```
 * @since 0.2.0
 * @category resolving
 */
export const resolveRun = Effect.fnUntraced(function* <E1, R1, E2 = never, R2 = never>(
  request: ResolveRequest,
  deps: {
    readonly catalog: ActionCatalog["Type"]
    readonly connectionFor: (user: EndUser, app: AppId) => Effect.Effect<Connection, E1, R1>
    readonly checkInputs?:
      | ((action: Domain.Action, connection: ConnectionId | null) => Effect.Effect<unknown, E2, R2>)
      | undefined
  }
) {
  const connection =
    request.connection !== undefined ? request.connection : (yield* deps.connectionFor(request.user, request.app)).id
  const action = yield* deps.catalog.resolve(request.user, request.app, request.action, request.actionType ?? "WRITE")
  if (request.validateInputs ?? action.actionType === "WRITE") {
    yield* deps.checkInputs !== undefined
      ? deps.checkInputs(action, connection)
      : ActionInputs.check(
          deps.catalog,
          request.user,
          action,
          { connection, inputs: request.inputs },
          { choices: request.validateChoices ?? false }
        )
  }
  return { action, connection }
})

/** @since 0.1.0 */
export interface AwaitOptions {
  /** Overall deadline (defaults to the polling policy's, 180 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The run was created with a run callback (its `RunHandle.callbackToken` is set): wait for the callback on the
   * run-event bus and poll only on the safety-net schedule (`RunCallbacks.safetyNetDefaults`). Ignored without
   * `RunCallbacks` in the program's context. Default false.
   */
  readonly callback?: boolean | undefined
  /**
   * On an `authentication` failure of a run this program started, mint a reconnect link when the connection is
   * no longer valid (`true`, or the link's options), carried by the `ActionRunFailed`.
   */
  readonly reconnectLink?: boolean | EnsureOptions | undefined
}

/** @since 0.1.0 */
export interface Service {
  /**
   * A valid connection of the user to the app: the stored one if it is still listed and valid, else the newest
   * valid one listed (then stored), else `ConnectionRequired` with a fresh Connect link (a reconnect link when
   * the stored connection expired; none with `mintLink: false`). With `redirectUri`, the link's `redirect_uri` gets a `connect_attempt`
   * parameter (`Domain.attemptParameter`) that ties the callback to this link; its other parameters are kept.
   * It always lists; the connection it returns counts as verified for `Caching.Policy`'s `connectionTtl`, during
   * which `start` uses it without listing.
   *
   * A stored connection marked expiring (`ConnectionStore.markExpiring`, from a connection webhook) is returned
   * until its `expiresAt` with `expiring` set (and a reconnect link in it with `reconnectIfExpiring`); from
   * `expiresAt` on it counts as expired: another valid connection listed, else `ConnectionRequired` (`expired`)
   * with a reconnect link. A reconnect completed through `completeConnection` clears the mark. Runs use an
   * expiring connection the same way (their span carries `zapier.connection_expires_at`, and a warning is logged).
   */
  readonly ensureConnection: (
    user: EndUser,
    app: AppId,
    options?: EnsureOptions
  ) => Effect.Effect<Connection, RequestError | ConnectionRequired | StoreUnavailable>
  /**
   * Completes a connection from Connect UI's callback: the redirect query (`authentication_id`, `service` or
   * `error`, `error_description`, `state`, and the `connect_attempt` parameter `ensureConnection` put into the
   * `redirect_uri`) or the popup message. Accepted only for an open attempt of this user and app, once, and only
   * when the id is among this user's valid connections to the app; then it is stored.
   *
   * The callback must prove which attempt it answers (its `state` or `connect_attempt`); a redirect or an error
   * without that proof is refused as `unbound` without touching any attempt. A popup success without a state may
   * answer the user's newest attempt. The attempt is closed only once the connection id is verified; an id Zapier
   * does not list yet is re-checked over `Polling.Policy.connectionGrace` before `connection_not_found`.
   */
  readonly completeConnection: (
    user: EndUser,
    app: AppId,
    callback: unknown
  ) => Effect.Effect<Connection, RequestError | ConnectFailed | StoreUnavailable>
  /** Polls the user's connections until a valid one appears that was not there when called; stores it. */
  readonly awaitConnection: (
    user: EndUser,
    app: AppId,
    options?: AwaitOptions
  ) => Effect.Effect<Connection, RequestError | ConnectFailed | StoreUnavailable>
  /**
   * Resolves the connection (the one verified within `Caching.Policy`'s `connectionTtl` without a request, else
   * `ensureConnection` with the request's `redirectUri` and `theme`) and a fresh action id (every run), validates the inputs (see `RunRequest.validateInputs`;
   * input fields fetched within `fieldsTtl` are reused), and creates the run.
   */
  readonly start: (
    request: RunRequest
  ) => Effect.Effect<
    RunHandle,
    RequestError | ConnectionRequired | ActionNotFound | InvalidInputs | RunOutcomeUnknown | StoreUnavailable
  >
  /**
   * Polls a run to its end. A `PollTimeout` can be resumed by calling `await` again. With `callback: true` (a run
   * started with a run callback, see `RunCallbacks`) the end comes from the run-event bus and polling is only the
   * safety net, on its stretched schedule. Otherwise, for a run `start`ed by this program, the polls are placed
   * where that action's runs usually end once a few have been seen (see `Polling.PolicyShape.adaptive`). An
   * `authentication` failure checks the connection again (see `ActionRunFailed.connectionStatus`).
   */
  readonly await: (
    user: EndUser,
    runId: Domain.ActionRunId,
    options?: AwaitOptions
  ) => Effect.Effect<RunResult, RequestError | ActionRunFailed | PollTimeout>
  /** `start`, then `await`. */
  readonly run: (
    request: RunRequest
  ) => Effect.Effect<
    RunResult,
    | RequestError
    | ConnectionRequired
    | ActionNotFound
    | InvalidInputs
    | RunOutcomeUnknown
    | ActionRunFailed
    | PollTimeout
    | StoreUnavailable
  >
}

/**
 * @since 0.1.0
 * @category tags
 */
export class EmbeddedActions extends Context.Tag("@effect-zapier/core/EmbeddedActions")<EmbeddedActions, Service>() {}

/** 32 random bytes, base64url: the `state` of a Connect link. */
const randomState = (): string => {
  const bytes = new Uint8Array(32)
  globalThis.crypto.getRandomValues(bytes)
  let binary = ""
  for (const b of bytes) binary += String.fromCharCode(b)
  return globalThis.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** A 400 about `callback_url` (Zapier refuses a URL that is not HTTPS, not public or too long). */
const isCallbackRefusal = (error: unknown): boolean =>
  error instanceof BadRequest &&
  error.errors.some((e) => e.code !== "parse_error" && /callback_url/i.test(`${e.title} ${e.detail ?? ""}`))

/** `redirectUri` with the attempt parameter set (replacing one already there), its other parameters kept. */
const withAttempt = (redirectUri: string, state: string): string => {
  const hash = redirectUri.indexOf("#")
  const base = hash === -1 ? redirectUri : redirectUri.slice(0, hash)
  const fragment = hash === -1 ? "" : redirectUri.slice(hash)
  const query = base.indexOf("?")
  const path = query === -1 ? base : base.slice(0, query)
  const kept = (query === -1 ? "" : base.slice(query + 1))
    .split("&")
    .filter((pair) => pair.length > 0 && pair.split("=")[0] !== Domain.attemptParameter)
  kept.push(`${Domain.attemptParameter}=${encodeURIComponent(state)}`)
  return `${path}?${kept.join("&")}${fragment}`
}

/**
 * Builds the program from the services it needs (yielded once, here).
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const connections = yield* Connections
  const catalog = yield* ActionCatalog
  const runs = yield* ActionRuns
  const store = yield* ConnectionStore
  // Optional: without it (no callback URL configured) every run is polled on the plain schedule.
  const callbacks = yield* Effect.serviceOption(RunCallbacks)
  const memory = Economy.make(yield* Caching.Policy)
  // Set when Zapier refused the callback URL: later runs are created without it.
  let callbackRefused = false

  const validFor = (app: AppId) => (c: Connection) => c.app === app && !c.isExpired

  const ensureConnection = Effect.fn("EmbeddedActions.ensureConnection")(function* (
    user: EndUser,
    app: AppId,
    options?: EnsureOptions
  ) {
    yield* Effect.annotateCurrentSpan({ "zapier.app": app })
    const stored = yield* store.get(user, app)
    // Zapier announced the stored connection's expiry: usable until then, expired from then on.
    const { expiresAt, lapsed } = Expiry.expiryOf(stored, yield* Clock.currentTimeMillis)
    const listed = (yield* connections.list(user, app)).filter((c) => c.app === app)
    const storedListed = Option.flatMap(stored, (s) => Array.findFirst(listed, (c) => c.id === s.connectionId))
    if (Option.isSome(storedListed) && !storedListed.value.isExpired && !lapsed) {
      yield* store.set(user, app, storedListed.value.id)
      memory.verified.set(user, app, storedListed.value, yield* Clock.currentTimeMillis)
      if (Option.isNone(expiresAt)) return storedListed.value
      yield* Effect.annotateCurrentSpan({ "zapier.connection_expires_at": DateTime.formatIso(expiresAt.value) })
      const reconnect = options?.reconnectIfExpiring
        ? yield* openLink(user, app, Option.some(storedListed.value.id), options)
        : undefined
      return Expiry.withExpiry(storedListed.value, expiresAt.value, reconnect)
    }
    // Zapier's list carries no creation time; it lists connections in creation order, so the last is the newest.
    const usable = (c: Connection) => validFor(app)(c) && !(lapsed && c.id === Option.getOrUndefined(storedListed)?.id)
    const newestValid = Array.findLast(listed, usable)
    if (Option.isSome(newestValid)) {
      yield* store.set(user, app, newestValid.value.id)
      memory.verified.set(user, app, newestValid.value, yield* Clock.currentTimeMillis)
      return newestValid.value
    }
    const expired = Option.isSome(storedListed) ? storedListed : Array.findLast(listed, (c) => c.isExpired)
    const reason = Option.isSome(expired) ? "expired" : "missing"
    if (options?.mintLink === false) return yield* new ConnectionRequired({ app, reason })
    const link = yield* openLink(
      user,
      app,
      Option.map(expired, (c) => c.id),
      options
    )
    return yield* new ConnectionRequired({ app, reason, link })
  })

  /** Mints a Connect link (a reconnect link for `reconnect`) and opens the attempt its callback will answer. */
  const openLink = Effect.fnUntraced(function* (
    user: EndUser,
    app: AppId,
    reconnect: Option.Option<ConnectionId>,
    options?: EnsureOptions
  ) {
    const state = randomState()
    const linkOptions: ConnectLinkOptions = {
      state,
      reconnect: Option.getOrUndefined(reconnect),
      // The attempt's key rides in the redirect_uri too: the browser brings it back whether Zapier echoes `state`.
      redirectUri: options?.redirectUri !== undefined ? withAttempt(options.redirectUri, state) : undefined,
      theme: options?.theme
    }
    const link = yield* connections.connectLink(user, app, linkOptions)
    const openedAt = yield* DateTime.now
    yield* store.openAttempt(
      ConnectAttempt.make({
        user,
        app,
        state: link.state ?? state,
        reconnect: Option.getOrUndefined(reconnect),
        openedAt,
        expiresAt: link.expiresAt
      })
    )
    return link
  })

  /**
   * The connection a run uses: the one verified within the caching policy's `connectionTtl` (and still the stored
   * one) without a request, else `ensureConnection` (which lists, and remembers what it verified).
   */
  const connectionFor = Effect.fnUntraced(function* (user: EndUser, app: AppId, options?: EnsureOptions) {
    const caching = yield* Caching.Policy
    const hit = memory.verified.get(user, app)
    const now = yield* Clock.currentTimeMillis
    let connection: Connection | undefined
    if (hit !== undefined && Economy.fresh(hit.at, now, caching.connectionTtl)) {
      const stored = yield* store.get(user, app)
      const { expiresAt, lapsed } = Expiry.expiryOf(stored, now)
      // From its announced expiry on, ensureConnection decides (another connection, or a reconnect link).
      if (Option.isSome(stored) && stored.value.connectionId === hit.value.id && !lapsed) {
        connection = Option.isSome(expiresAt) ? Expiry.withExpiry(hit.value, expiresAt.value) : hit.value
      }
    }
    connection ??= yield* ensureConnection(user, app, options)
    yield* Expiry.warnRun(app, connection)
    return connection
  })

  const completeConnection = Effect.fn("EmbeddedActions.completeConnection")(
    (user: EndUser, app: AppId, callback: unknown) =>
      CompleteConnection.completeConnection({ connections, store }, user, app, callback)
  )

  const awaitConnection = Effect.fn("EmbeddedActions.awaitConnection")(function* (
    user: EndUser,
    app: AppId,
    options?: AwaitOptions
  ) {
    const policy = yield* Polling.Policy
    const before = new Set((yield* connections.list(user, app)).filter(validFor(app)).map((c) => c.id))
    const isNew = (c: Connection) => validFor(app)(c) && !before.has(c.id)
    // The polling policy's delays (jittered, capped at maxDelay), driven by hand as the run polling loop is.
    const waitForNew = Effect.gen(function* () {
      const driver = yield* Schedule.driver(Polling.schedule(policy))
      while (true) {
        yield* Effect.orDie(driver.next(undefined))
        const found = Array.findLast(yield* connections.list(user, app), isNew)
        if (Option.isSome(found)) return found.value
      }
    })
    const connection = yield* Effect.timeoutOption(waitForNew, options?.timeout ?? policy.deadline)
    if (Option.isNone(connection)) return yield* new ConnectFailed({ app, reason: "timeout" })
    yield* store.set(user, app, connection.value.id, { renewed: true })
    const attempt = yield* store.latestAttempt(user, app)
    if (Option.isSome(attempt) && !attempt.value.closed) yield* store.closeAttempt(attempt.value.attempt.state)
    return connection.value
  })

  const start = Effect.fn("EmbeddedActions.start")(function* (request: RunRequest) {
    yield* Effect.annotateCurrentSpan({
      "zapier.app": request.app,
      "zapier.action": request.action,
      "zapier.action_type": request.actionType ?? "WRITE"
    })
    const { action, connection } = yield* resolveRun(request, {
      catalog,
      connectionFor: (user, app) =>
        connectionFor(user, app, { redirectUri: request.redirectUri, theme: request.theme }),
      checkInputs: (action, connection) => Economy.checkInputs(catalog, memory, request, action, connection)
    })
    let target =
      request.callbackUrl === undefined && request.callback !== false && Option.isSome(callbacks) && !callbackRefused
        ? yield* callbacks.value.target(request.callbackToken)
        : undefined
    const create = (callbackUrl: string | undefined) =>
      runs.create(request.user, { action: action.id, connection, inputs: request.inputs, callbackUrl })
    const runId = yield* create(target !== undefined ? Redacted.value(target.url) : request.callbackUrl).pipe(
      // A 400 about the callback URL means Zapier processed nothing: the run is created again without it (once,
      // so a callback is never needed for a run), and no later run sends it.
      Effect.catchIf(
        (e) => target !== undefined && isCallbackRefusal(e),
        (e) =>
          Effect.gen(function* () {
            target = undefined
            if (!callbackRefused) {
              callbackRefused = true
              yield* Effect.logWarning(
                "Zapier refused the run callback URL; runs are created without it and polled. Check runCallbackUrl."
              ).pipe(Effect.annotateLogs({ zapier_errors: e._tag === "BadRequest" ? e.message : e._tag }))
            }
            return yield* create(undefined)
          })
      ),
      Effect.catchTag("RunOutcomeUnknown", (e) =>
        Effect.fail(
          new RunOutcomeUnknown({
            endpoint: e.endpoint,
            reason: e.reason,
            status: e.status,
            app: request.app,
            action: request.action,
            connection
          })
        )
      )
    )
    yield* Effect.annotateCurrentSpan({ "zapier.run_id": runId })
    // The receiver binds a callback to its run by this record; without it the callback would be refused, so a
    // failed write means this run is polled on the plain schedule.
    const expected =
      target !== undefined && Option.isSome(callbacks)
        ? yield* callbacks.value.events.expect(runId, target.token).pipe(
            Effect.as(true),
            Effect.catchAll((error) =>
              Effect.as(
                Effect.logWarning("The run-event bus failed; this run will be polled without its callback").pipe(
                  Effect.annotateLogs({ run_id: runId, reason: error.reason })
                ),
                false
              )
            )
          )
        : false
    yield* Effect.annotateCurrentSpan({ "zapier.run_callback": expected })
    memory.recent.set(
      request.user,
      runId,
      {
        runId,
        app: request.app,
        action: request.action,
        actionType: action.actionType,
        connection,
        createdAt: yield* Clock.currentTimeMillis
      },
      yield* Clock.currentTimeMillis
    )
    // Every field is already of its schema's type (decoded from Zapier's answers, or the request's own branded
    // values): the handle is built without validating them again (~50 µs of CPU per run).
    return new Domain.RunHandle(
      {
        runId,
        user: request.user,
        app: request.app,
        action: request.action,
        actionId: action.id,
        connection,
        ...(expected && target !== undefined ? { callbackToken: target.token } : {})
      },
      true
    )
  }, Metrics.trackStart)

  const awaitRun = Effect.fn("EmbeddedActions.await")(AwaitRun.make({ runs, connections, callbacks, memory, openLink }))

  const run = Effect.fn("EmbeddedActions.run")(function* (request: RunRequest) {
    yield* Effect.annotateCurrentSpan({
      "zapier.app": request.app,
      "zapier.action": request.action,
      "zapier.action_type": request.actionType ?? "WRITE"
    })
    const handle = yield* start(request)
    yield* Effect.annotateCurrentSpan("zapier.run_id", handle.runId)
    return yield* awaitRun(request.user, handle.runId, {
      timeout: request.timeout,
      callback: handle.callbackToken !== undefined,
      reconnectLink: request.reconnectLink
    })
  })

  return EmbeddedActions.of({
    ensureConnection,
    completeConnection,
    awaitConnection,
    start,
    await: awaitRun,
    run
  })
})

/**
 * The program as a layer.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<EmbeddedActions, never, Connections | ActionCatalog | ActionRuns | ConnectionStore> =
  Layer.effect(EmbeddedActions, make)
