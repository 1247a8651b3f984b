/**
 * An in-memory Zapier: one model of a partner, its provisioned end users, apps with actions, connections, action
 * runs with scripted lifecycles, connect tokens, access tokens, rate limits, a fault plan, and a ledger of
 * everything that happened. `FakeZapier.layer(seed)` serves core's four services straight from the model (no HTTP),
 * plus the {@link FakeZapier} control tag to script and inspect it. `FakeZapierServer` serves the same model over
 * real HTTP.
 *
 * Time is Effect's `Clock` (the one in scope when the layer is built), so under `TestClock` a run created at `t`
 * that is scripted to take 2 s finishes at `t + 2 s`, and polling a 60 s run completes instantly.
 *
 * @example
 * ```ts
 * import { ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
 * import { FakeZapier } from "@effect-zapier/testing"
 * import { Effect, Layer } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 * const program = Effect.gen(function* () {
 *   const zapier = yield* FakeZapier.FakeZapier
 *   yield* zapier.addConnection(user, FakeZapier.sample.slack)
 *   const actions = yield* EmbeddedActions.EmbeddedActions
 *   return yield* actions.run({ user, app: FakeZapier.sample.slack, action: FakeZapier.sample.sendChannelMessage, inputs: { channel: "#general", text: "Hi" } })
 * })
 * const live = EmbeddedActions.layer.pipe(
 *   Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)),
 *   Layer.provide(ConnectionStore.layerMemory)
 * )
 * program.pipe(Effect.provide(live))
 * ```
 *
 * @since 0.1.0
 */
import type { ActionCatalog, ActionInputs, ActionRuns, Apps, Connections, TokenExchange } from "@effect-zapier/core"
import { Domain, type Errors } from "@effect-zapier/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { JWK } from "jose"
import * as Model from "./internal/model.js"
import * as Services from "./internal/services.js"

// ---------------------------------------------------------------------------------------------------------------
// Run scripts
// ---------------------------------------------------------------------------------------------------------------

/**
 * One error of a scripted failing run, as Zapier reports it in `errors[]` (`delay` is sent in whole seconds).
 * @since 0.1.0
 * @category scripts
 */
export interface RunErrorSeed {
  readonly code: string
  readonly title: string
  readonly detail?: string | undefined
  readonly delay?: Duration.DurationInput | undefined
}

/**
 * The results of a successful run: fixed, or computed from the run's inputs.
 * @since 0.1.0
 * @category scripts
 */
export type ResultsSeed =
  | ReadonlyArray<unknown>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<unknown>)

/**
 * The lifecycle of every run of an action: succeed after a duration with results, fail after a duration with
 * `errors[]`, or stay pending forever. The status is computed from the clock whenever the run is read.
 * @since 0.1.0
 * @category scripts
 */
export type RunScript =
  | { readonly _tag: "Succeed"; readonly after: Duration.Duration; readonly results: ResultsSeed }
  | { readonly _tag: "Fail"; readonly after: Duration.Duration; readonly errors: ReadonlyArray<RunErrorSeed> }
  | { readonly _tag: "Pending" }

/**
 * Constructors of {@link RunScript}s.
 *
 * @example
 * ```ts
 * FakeZapier.RunScript.succeed("2 seconds", (inputs) => [{ ok: true, channel: inputs.channel }])
 * FakeZapier.RunScript.fail("1 second", [{ code: "throttled", title: "Throttled", delay: "30 seconds" }])
 * FakeZapier.RunScript.pending
 * ```
 * @since 0.1.0
 * @category scripts
 */
export const RunScript = {
  succeed: (after: Duration.DurationInput, results: ResultsSeed): RunScript => ({
    _tag: "Succeed",
    after: Duration.decode(after),
    results
  }),
  fail: (after: Duration.DurationInput, errors: ReadonlyArray<RunErrorSeed>): RunScript => ({
    _tag: "Fail",
    after: Duration.decode(after),
    errors
  }),
  pending: { _tag: "Pending" } as RunScript
} as const

// ---------------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------------

/**
 * A fault injected into one request.
 * - `Status`: answer with this HTTP status and a Zapier error (`errors[]`; OAuth `{error}` on the token endpoint),
 *   with `Retry-After` when `retryAfter` is set (in delta seconds, or as an HTTP-date with
 *   `retryAfterFormat: "http-date"`). With `afterCommit` the request is processed first (a run is created) and
 *   only the answer is replaced: the ambiguous case.
 * - `Delay`: answer normally, after `duration` (on the model's clock).
 * - `Disconnect`: the connection is dropped without an answer (after processing when `afterCommit`).
 * - `MalformedBody`: the request is processed, then answered `200` with a body that is not JSON.
 * - `Respond`: the answer is replaced by exactly this status, content type, headers and body (an HTML page, an
 *   empty 200, a run with a status Zapier never documented, …); processed first unless `afterCommit: false`.
 *   Over HTTP the bytes are sent as given; the in-memory layer, which has no wire, maps it by status (a 2xx
 *   counts as a body that does not decode).
 * @since 0.1.0
 * @category faults
 */
export type Fault =
  | {
      readonly _tag: "Status"
      readonly status: number
      readonly code?: string | undefined
      readonly detail?: string | undefined
      readonly retryAfter?: Duration.DurationInput | undefined
      readonly retryAfterFormat?: "seconds" | "http-date" | undefined
      readonly afterCommit?: boolean | undefined
    }
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput }
  | { readonly _tag: "Disconnect"; readonly afterCommit?: boolean | undefined }
  | { readonly _tag: "MalformedBody" }
  | {
      readonly _tag: "Respond"
      readonly status: number
      readonly body: string
      readonly contentType?: string | undefined
      readonly headers?: Readonly<Record<string, string>> | undefined
      readonly afterCommit?: boolean | undefined
    }

/**
 * Constructors of {@link Fault}s.
 *
 * @example
 * ```ts
 * FakeZapier.Fault.status(429, { retryAfter: "30 seconds", retryAfterFormat: "http-date" })
 * FakeZapier.Fault.respond("<html><body>Bad gateway</body></html>", { status: 200, contentType: "text/html" })
 * FakeZapier.Fault.respond("", { status: 200 }) // an empty 200
 * ```
 * @since 0.1.0
 * @category faults
 */
export const Fault = {
  status: (
    status: number,
    options?: {
      readonly code?: string | undefined
      readonly detail?: string | undefined
      readonly retryAfter?: Duration.DurationInput | undefined
      readonly retryAfterFormat?: "seconds" | "http-date" | undefined
      readonly afterCommit?: boolean | undefined
    }
  ): Fault => ({ _tag: "Status", status, ...options }),
  delay: (duration: Duration.DurationInput): Fault => ({ _tag: "Delay", duration }),
  disconnect: (options?: { readonly afterCommit?: boolean | undefined }): Fault => ({ _tag: "Disconnect", ...options }),
  malformedBody: { _tag: "MalformedBody" } as Fault,
  respond: (
    body: string,
    options?: {
      readonly status?: number | undefined
      readonly contentType?: string | undefined
      readonly headers?: Readonly<Record<string, string>> | undefined
      readonly afterCommit?: boolean | undefined
    }
  ): Fault => ({
    _tag: "Respond",
    body,
    status: options?.status ?? 200,
    contentType: options?.contentType ?? "application/json",
    ...(options?.headers !== undefined ? { headers: options.headers } : {}),
    ...(options?.afterCommit !== undefined ? { afterCommit: options.afterCommit } : {})
  })
} as const

/**
 * When a fault fires: on requests to `endpoint` (one of {@link Endpoint}; any when omitted) of `user` (any when
 * omitted), after skipping the first `skip` matching requests, for `times` requests (default 1; `Infinity` for all).
 *
 * @example
 * ```ts
 * // The 2nd create-run request is processed but its answer is a 500:
 * zapier.injectFault({ endpoint: FakeZapier.Endpoint.createRun, skip: 1, fault: FakeZapier.Fault.status(500, { afterCommit: true }) })
 * ```
 * @since 0.1.0
 * @category faults
 */
export interface FaultRule {
  readonly endpoint?: string | undefined
  readonly user?: Domain.EndUser | undefined
  readonly skip?: number | undefined
  readonly times?: number | undefined
  readonly fault: Fault
}

/**
 * The names of the endpoints, as the ledger and fault rules use them (method and route template).
 * @since 0.1.0
 * @category ledger
 */
export const Endpoint = {
  token: "POST /oauth/token",
  apps: "GET /v2/apps",
  authentications: "GET /v2/authentications",
  actions: "GET /v2/actions",
  inputs: "POST /v2/actions/{id}/inputs",
  choices: "POST /v2/actions/{id}/inputs/{input}/choices",
  outputs: "POST /v2/actions/{id}/outputs",
  createRun: "POST /v2/action-runs/",
  getRun: "GET /v2/action-runs/{id}/",
  connectPage: "GET /to/{app}",
  connectSubmit: "POST /to/{app}"
} as const

// ---------------------------------------------------------------------------------------------------------------
// Seed
// ---------------------------------------------------------------------------------------------------------------

/**
 * A public key the partner registered for its JWTs: an SPKI PEM or a public JWK.
 * @since 0.1.0
 * @category seed
 */
export interface PartnerKeySeed {
  readonly kid: string
  readonly publicKey: string | JWK
  /** Restrict the key to one algorithm (RS256/384/512, ES256/384/512). */
  readonly alg?: string | undefined
}

/**
 * The partner as Zapier registered it at onboarding.
 * @since 0.1.0
 * @category seed
 */
export interface PartnerSeed {
  readonly clientId?: string | undefined
  readonly clientSecret?: string | undefined
  /** The JWT `iss` Zapier expects (default `https://partner.example`). */
  readonly issuer?: string | undefined
  /** The JWT `aud` Zapier expects (default `connect.zapier.com`). */
  readonly audience?: string | undefined
  readonly keys?: ReadonlyArray<PartnerKeySeed> | undefined
  /** The claim holding the user id (default `sub`). */
  readonly userClaim?: string | undefined
  /** The claim holding the tenant id (default `org_id`). */
  readonly tenantClaim?: string | undefined
  /** Registered Connect callback URLs; when set, any other `redirect_uri` is refused. */
  readonly redirectUris?: ReadonlyArray<string> | undefined
}

/**
 * One choice of a `SELECT` field: a bare value, or a value with a label (and an id; default the value).
 * @since 0.1.0
 * @category seed
 */
export type ChoiceSeed =
  | string
  | { readonly value: string; readonly label?: string | undefined; readonly id?: string | undefined }

/**
 * The choices of a field: fixed, or computed from the inputs filled so far (a dropdown that depends on another
 * field). They are served in pages of `Seed.choicesPageSize`.
 * @since 0.1.0
 * @category seed
 */
export type ChoicesSeed =
  | ReadonlyArray<ChoiceSeed>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<ChoiceSeed>)

/**
 * An input field of an action. `valueType` defaults to `STRING`; a field with `choices` is a `SELECT` field
 * unless `format` says otherwise. `when` makes it a dependent field: it is only among the fields while `when`
 * holds for the inputs (pair it with `invalidates: true` on the field it depends on).
 * @since 0.1.0
 * @category seed
 */
export interface InputFieldSeed {
  readonly type?: "input" | undefined
  readonly id: string
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly required?: boolean | undefined
  readonly default?: string | undefined
  readonly placeholder?: string | undefined
  readonly format?: ActionInputs.InputFormat | undefined
  readonly valueType?: ActionInputs.ValueType | undefined
  readonly list?: boolean | undefined
  readonly dependsOn?: ReadonlyArray<string> | undefined
  readonly invalidates?: boolean | undefined
  readonly choices?: ChoicesSeed | undefined
  readonly when?: ((inputs: Readonly<Record<string, unknown>>) => boolean) | undefined
}

/** A piece of help text among the fields. @since 0.1.0 @category seed */
export interface InfoFieldSeed {
  readonly type: "info"
  readonly id: string
  readonly description: string
}

/** A titled group of fields. @since 0.1.0 @category seed */
export interface FieldsetSeed {
  readonly type: "fieldset"
  readonly id: string
  readonly title: string
  readonly fields: ReadonlyArray<InputFieldSeed | InfoFieldSeed>
}

/** @since 0.1.0 @category seed */
export type FieldSeed = InputFieldSeed | InfoFieldSeed | FieldsetSeed

/**
 * An action's input fields: fixed, or computed from the inputs filled so far (fields that appear when another
 * one changes).
 * @since 0.1.0
 * @category seed
 */
export type FieldsSeed =
  | ReadonlyArray<FieldSeed>
  | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<FieldSeed>)

/** One output field of an action. @since 0.1.0 @category seed */
export interface OutputFieldSeed {
  readonly id: string
  readonly title?: string | undefined
  readonly sample?: unknown
}

/**
 * An action of a seeded app and the lifecycle of its runs (default: success after 1 s with no results), with
 * its input fields (default none) and output fields (default none).
 * @since 0.1.0
 * @category seed
 */
export interface ActionSeed {
  readonly key: string
  readonly actionType: Domain.ActionType
  readonly title: string
  readonly description?: string | undefined
  readonly isInstant?: boolean | undefined
  readonly run?: RunScript | undefined
  readonly inputFields?: FieldsSeed | undefined
  readonly outputFields?:
    | ReadonlyArray<OutputFieldSeed>
    | ((inputs: Readonly<Record<string, unknown>>) => ReadonlyArray<OutputFieldSeed>)
    | undefined
}

/**
 * An app of the catalog. `service` is the key Connect UI reports (for example `SlackAPI`).
 * @since 0.1.0
 * @category seed
 */
export interface AppSeed {
  readonly id: string
  readonly title: string
  readonly service: string
  readonly description?: string | undefined
  /** Category slugs, for `GET /v2/apps?category=`. */
  readonly categories?: ReadonlyArray<string> | undefined
  /** Apps without authentication run with `connection: null` (default `true`). */
  readonly requiresAuth?: boolean | undefined
  readonly actions: ReadonlyArray<ActionSeed>
}

/**
 * A connection to seed (or add). Ids are generated (numeric strings) unless given.
 * @since 0.1.0
 * @category seed
 */
export interface ConnectionSeed {
  readonly app: string
  readonly id?: string | undefined
  readonly title?: string | undefined
  readonly isExpired?: boolean | undefined
}

/**
 * An end user provisioned up front, with connections.
 * @since 0.1.0
 * @category seed
 */
export interface UserSeed {
  readonly user: { readonly userId: string; readonly tenantId: string }
  readonly connections?: ReadonlyArray<ConnectionSeed> | undefined
}

/**
 * Everything a fresh model starts with. Every field is optional.
 * @since 0.1.0
 * @category seed
 */
export interface Seed {
  readonly partner?: PartnerSeed | undefined
  readonly apps?: ReadonlyArray<AppSeed> | undefined
  readonly users?: ReadonlyArray<UserSeed> | undefined
  /** `expires_in` of access tokens (default 3600 s). */
  readonly accessTokenTtl?: Duration.DurationInput | undefined
  /** Lifetime of connect tokens (default 6 minutes). */
  readonly connectTokenTtl?: Duration.DurationInput | undefined
  /** The scope granted with access tokens when none is requested. */
  readonly scope?: string | undefined
  /** Base URL of Connect UI in links (default `https://connect.zapier.com`; the server uses its own URL). */
  readonly connectUrl?: string | undefined
  /** Choices per page of `…/inputs/{field}/choices` (default 10). */
  readonly choicesPageSize?: number | undefined
  /** Requests per minute to `/v2` before a 429 and a 60 s cooldown (default: no limit). */
  readonly rateLimitPerMinute?: number | undefined
  /**
   * The window `rateLimitPerMinute` counts over, and the cooldown after a 429 (default 60 s, Zapier's); shorter
   * windows scale a real-time test down (`rateLimitPerMinute` is then "per window").
   */
  readonly rateLimitWindow?: Duration.DurationInput | undefined
  readonly faults?: ReadonlyArray<FaultRule> | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------------------------

/** One request (HTTP, or a logical one for the in-memory layer). `at` is epoch millis on the model's clock. @since 0.1.0 @category ledger */
export interface RequestEntry {
  readonly at: number
  readonly method: string
  readonly endpoint: string
  readonly path: string
  readonly status: number
  readonly user?: Domain.EndUser | undefined
}
/** One token issued by the token endpoint. @since 0.1.0 @category ledger */
export interface ExchangeEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly kind: "access" | "connect"
  readonly app?: Domain.AppId | undefined
  readonly expiresIn: number
}
/** One action lookup (`GET /v2/actions`) and the fresh ids it issued. @since 0.1.0 @category ledger */
export interface LookupEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly actionType?: Domain.ActionType | undefined
  readonly ids: ReadonlyArray<Domain.ActionId>
}
/** One run created. @since 0.1.0 @category ledger */
export interface RunEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly runId: Domain.ActionRunId
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly actionId: Domain.ActionId
  readonly connection: Domain.ConnectionId | null
  readonly inputs: Readonly<Record<string, unknown>>
}
/** One read of a run, with the status it returned. @since 0.1.0 @category ledger */
export interface PollEntry {
  readonly at: number
  readonly user: Domain.EndUser
  readonly runId: Domain.ActionRunId
  readonly status: RunStatus
}
/** One Connect UI session that finished (or was refused). @since 0.1.0 @category ledger */
export interface ConnectEntry {
  readonly at: number
  readonly user?: Domain.EndUser | undefined
  readonly app: string
  readonly outcome: "approved" | "denied" | "refused"
  readonly connection?: Domain.ConnectionId | undefined
  readonly reconnect?: boolean | undefined
  readonly error?: string | undefined
  readonly description?: string | undefined
}

/**
 * Everything that happened, in order.
 * @since 0.1.0
 * @category ledger
 */
export interface Ledger {
  readonly requests: ReadonlyArray<RequestEntry>
  readonly exchanges: ReadonlyArray<ExchangeEntry>
  readonly lookups: ReadonlyArray<LookupEntry>
  readonly runs: ReadonlyArray<RunEntry>
  readonly polls: ReadonlyArray<PollEntry>
  readonly connects: ReadonlyArray<ConnectEntry>
}

const sameUser = (a: Domain.EndUser | undefined, b: Domain.EndUser): boolean =>
  a !== undefined && a.userId === b.userId && a.tenantId === b.tenantId

/**
 * Requests per endpoint, e.g. `{ "GET /v2/action-runs/{id}/": 3, ... }`.
 * @since 0.1.0
 * @category ledger
 */
export const requestsByEndpoint = (ledger: Ledger): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const r of ledger.requests) counts[r.endpoint] = (counts[r.endpoint] ?? 0) + 1
  return counts
}

/**
 * The tokens issued to one user (optionally of one kind).
 * @since 0.1.0
 * @category ledger
 */
export const exchangesOf = (
  ledger: Ledger,
  user: Domain.EndUser,
  kind?: "access" | "connect"
): ReadonlyArray<ExchangeEntry> =>
  ledger.exchanges.filter((e) => sameUser(e.user, user) && (kind === undefined || e.kind === kind))

/**
 * The reads of one run.
 * @since 0.1.0
 * @category ledger
 */
export const pollsOf = (ledger: Ledger, runId: Domain.ActionRunId): ReadonlyArray<PollEntry> =>
  ledger.polls.filter((p) => p.runId === runId)

/**
 * The runs one user created.
 * @since 0.1.0
 * @category ledger
 */
export const runsOf = (ledger: Ledger, user: Domain.EndUser): ReadonlyArray<RunEntry> =>
  ledger.runs.filter((r) => sameUser(r.user, user))

/**
 * The action lookups one user made.
 * @since 0.1.0
 * @category ledger
 */
export const lookupsOf = (ledger: Ledger, user: Domain.EndUser): ReadonlyArray<LookupEntry> =>
  ledger.lookups.filter((l) => sameUser(l.user, user))

// ---------------------------------------------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------------------------------------------

/**
 * Zapier's word for a run's state on the wire.
 * @since 0.1.0
 */
export type RunStatus = "waiting" | "success" | "error"

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
  readonly status: RunStatus
}

/**
 * What a real browser delivers to the partner when Connect UI finishes: the redirect's query, or the popup's
 * `postMessage` data. Feed it to `EmbeddedActions.completeConnection`.
 * @since 0.1.0
 * @category connect
 */
export type ConnectCallbackPayload =
  | { readonly authentication_id: string; readonly service: string; readonly state?: string }
  | { readonly error: string; readonly error_description: string; readonly state?: string }
  | { readonly type: "authenticationSuccess"; readonly authId: number | string }
  | {
      readonly type: "authenticationError"
      readonly error: { readonly error: string; readonly error_description: string }
    }

/**
 * How `approveConnect` / `denyConnect` deliver the outcome: the redirect query (default) or the popup message.
 * @since 0.1.0
 * @category connect
 */
export interface ConnectOptions {
  readonly mode?: "redirect" | "popup" | undefined
  /** The title of a new connection (default `"<App title> <userId>"`). */
  readonly title?: string | undefined
}

/**
 * Options of `denyConnect` (default: `server_error`, `OAuth Failed: access_denied`, as when the user refuses
 * the third-party consent screen).
 * @since 0.1.0
 * @category connect
 */
export interface DenyOptions {
  readonly mode?: "redirect" | "popup" | undefined
  readonly error?: string | undefined
  readonly description?: string | undefined
}

/**
 * The control side of the model: script it, act as the end user in Connect UI, and read the ledger.
 * Misuse (an unknown app, user or connection) fails with core's `NotFound`, naming the control method.
 * @since 0.1.0
 * @category control
 */
export interface Control {
  /** The Connect UI base URL used in links. */
  readonly connectUrl: string
  /** Adds (or replaces) an app of the catalog. */
  readonly addApp: (app: AppSeed) => Effect.Effect<void>
  /** Adds (or replaces, by key) an action of an app. */
  readonly addAction: (app: string, action: ActionSeed) => Effect.Effect<void, Errors.NotFound>
  /** Provisions an end user (as their first token exchange would). */
  readonly addUser: (user: Domain.EndUser) => Effect.Effect<void>
  /** Adds a connection of the user to the app (provisioning the user); listed after the existing ones. */
  readonly addConnection: (
    user: Domain.EndUser,
    app: string,
    options?: Omit<ConnectionSeed, "app">
  ) => Effect.Effect<Domain.Connection, Errors.NotFound>
  /** Marks a connection expired (`is_expired: true`). */
  readonly expireConnection: (connection: string) => Effect.Effect<void, Errors.NotFound>
  /** The user's connections (to one app or all), in creation order. */
  readonly connections: (user: Domain.EndUser, app?: string) => Effect.Effect<ReadonlyArray<Domain.Connection>>
  /**
   * Scripts the next runs of an action: each new run takes the next script; the last one stays for every later
   * run. Replaces earlier scripting of the action.
   */
  readonly scriptRuns: (
    app: string,
    action: string,
    ...scripts: ReadonlyArray<RunScript>
  ) => Effect.Effect<void, Errors.NotFound>
  /** A run as the model holds it (any user's). */
  readonly run: (runId: string) => Effect.Effect<RunInfo, Errors.NotFound>
  /** Every run, in creation order. */
  readonly runs: Effect.Effect<ReadonlyArray<RunInfo>>
  /**
   * Acts as the end user finishing Connect UI for a link (a `ConnectLink`, its URL, or a bare connect token):
   * consumes the token, creates the connection (or re-validates `reconnect_id` in place) and returns the callback
   * a browser would deliver. An expired, reused or invalid token returns the error callback instead, as Connect UI
   * does (`invalid_request`, `Token expired` / `Invalid token`).
   */
  readonly approveConnect: (
    link: Domain.ConnectLink | string,
    options?: ConnectOptions
  ) => Effect.Effect<ConnectCallbackPayload>
  /** Acts as the end user refusing in Connect UI: consumes the token and returns the error callback. */
  readonly denyConnect: (
    link: Domain.ConnectLink | string,
    options?: DenyOptions
  ) => Effect.Effect<ConnectCallbackPayload>
  /** Revokes every access token of the user: the next request with one gets a 401. */
  readonly revokeTokens: (user: Domain.EndUser) => Effect.Effect<void>
  /** Registers another partner public key (key rotation). */
  readonly addPartnerKey: (key: PartnerKeySeed) => Effect.Effect<void>
  /** Adds a fault rule (see {@link FaultRule}). */
  readonly injectFault: (rule: FaultRule) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /** Sets (or, with `undefined`, removes) the `/v2` rate limit per minute. */
  readonly setRateLimit: (perMinute: number | undefined) => Effect.Effect<void>
  /** A snapshot of the ledger. */
  readonly ledger: Effect.Effect<Ledger>
  /** Empties the ledger (state is kept). */
  readonly resetLedger: Effect.Effect<void>
}

/**
 * The control tag of the model.
 * @since 0.1.0
 * @category tags
 */
export class FakeZapier extends Context.Tag("@effect-zapier/testing/FakeZapier")<FakeZapier, Control>() {}

/**
 * Core's services served from a fresh model (`TokenExchange`, `Connections`, `ActionCatalog`, `ActionRuns`,
 * `Apps`), and the {@link FakeZapier} control tag. The model's clock is the
 * `Clock` in scope when the layer is built (`TestClock` inside `it.effect`).
 *
 * Behaviour, as core's contracts describe it:
 * - `TokenExchange` caches one access token per user (refreshed when less than min(300 s, half its life) is left,
 *   or after a 401); every exchange is in the ledger. Connect tokens are single use and last 6 minutes.
 * - `Connections.list` returns the user's own connections to the app, in creation order; `connectLink` builds
 *   `{connectUrl}/to/{app}?token=…&state=…&reconnect_id=…&redirect_uri=…&theme=…`.
 * - `ActionCatalog.resolve` looks the action up on every call and returns a new id every time (`ActionNotFound`
 *   for an unknown key/type; `NotFound` for an unknown app). `inputFields`, `choices` and `outputFields` take an
 *   action id issued to this user and a connection of this user to the action's app (`BadRequest` otherwise),
 *   and compute the fields from the inputs as the seed says.
 * - `Apps` lists the catalog (filtered by `query`, `category`, `ids`) a page at a time.
 * - `ActionRuns.create` accepts only an action id issued to this user by a lookup, and a connection of this user
 *   to the action's app (`BadRequest` otherwise). An expired connection is accepted, and the run fails at once
 *   with code `authentication`, as Zapier reports a connection that needs reconnecting.
 * - `ActionRuns.get` of another user's run (or an unknown id) is `NotFound`.
 * - Fault rules and the rate limit apply as they would over HTTP (a 5xx or a drop on create is
 *   `RunOutcomeUnknown`).
 *
 * @example
 * ```ts
 * const TestZapier = FakeZapier.layer(FakeZapier.sampleSeed)
 * it.effect("runs", () => program.pipe(Effect.provide(EmbeddedActions.layer.pipe(Layer.provideMerge(TestZapier), Layer.provide(ConnectionStore.layerMemory)))))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  seed?: Seed
): Layer.Layer<
  | TokenExchange.TokenExchange
  | Connections.Connections
  | ActionCatalog.ActionCatalog
  | ActionRuns.ActionRuns
  | Apps.Apps
  | FakeZapier
> =>
  Layer.unwrapEffect(
    Effect.map(Model.make(seed ?? {}), (model) =>
      Layer.merge(Services.layer(model), Layer.succeed(FakeZapier, model.control))
    )
  )

// ---------------------------------------------------------------------------------------------------------------
// Sample seed
// ---------------------------------------------------------------------------------------------------------------

/**
 * Ids and keys of {@link sampleSeed}.
 * @since 0.1.0
 * @category fixtures
 */
export const sample = {
  /** The Slack-like app (`service: "SlackAPI"`). */
  slack: Domain.AppId.make("slack"),
  /** A Google-Sheets-like app (`service: "GoogleSheetsV2API"`). */
  sheets: Domain.AppId.make("google-sheets"),
  /** An app without authentication (runs with `connection: null`). */
  formatter: Domain.AppId.make("formatter"),
  /** WRITE, succeeds after 2 s with `[{ ok: true, channel, text, ts }]`. */
  sendChannelMessage: Domain.ActionKey.make("send_channel_message"),
  /** WRITE, fails after 1 s with a `user` error. */
  sendDirectMessage: Domain.ActionKey.make("send_direct_message"),
  /** WRITE, never finishes. */
  exportChannelHistory: Domain.ActionKey.make("export_channel_history"),
  /** SEARCH, succeeds after 500 ms. */
  findUserByEmail: Domain.ActionKey.make("find_user_by_email"),
  /** READ (instant), succeeds at once. */
  listChannels: Domain.ActionKey.make("list_channels"),
  /** WRITE on sheets, succeeds after 10 s. */
  createSpreadsheetRow: Domain.ActionKey.make("create_spreadsheet_row"),
  /** WRITE on formatter (no auth), succeeds after 500 ms with the upper-cased `text`. */
  uppercase: Domain.ActionKey.make("uppercase"),
  /** The sample partner's client credentials and JWT settings. */
  clientId: "fake-client-id",
  clientSecret: "fake-client-secret",
  issuer: "https://partner.example",
  /** A sample end user. */
  user: Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
} as const

/**
 * The channels of the sample Slack workspace: the choices of `channel` (23 of them: three pages of 10).
 * @since 0.1.0
 * @category fixtures
 */
export const sampleChannels: ReadonlyArray<string> = [
  "general",
  "random",
  "announcements",
  "engineering",
  "design",
  "marketing",
  "sales",
  "support",
  "ops",
  "hiring",
  "finance",
  "legal",
  "product",
  "qa",
  "data",
  "security",
  "infra",
  "mobile",
  "web",
  "partners",
  "events",
  "watercooler",
  "zapier-alerts"
].map((name) => `#${name}`)

const channelChoices: ReadonlyArray<ChoiceSeed> = sampleChannels.map((value, i) => ({
  id: `C${String(i + 1).padStart(3, "0")}`,
  value,
  label: value.slice(1)
}))

const spreadsheets: Record<string, { readonly title: string; readonly sheets: Record<string, ReadonlyArray<string>> }> =
  {
    "sheet-leads": { title: "Leads", sheets: { "ws-1": ["Name", "Email", "Amount"], "ws-2": ["Name", "Notes"] } },
    "sheet-budget": { title: "Budget 2026", sheets: { "ws-1": ["Item", "Amount"] } }
  }

/** The sheets action's fields: spreadsheet, then (once chosen) its worksheets, then (once chosen) its columns. */
const spreadsheetRowFields = (inputs: Readonly<Record<string, unknown>>): ReadonlyArray<FieldSeed> => {
  const spreadsheet = typeof inputs.spreadsheet === "string" ? spreadsheets[inputs.spreadsheet] : undefined
  const columns =
    spreadsheet !== undefined && typeof inputs.worksheet === "string" ? spreadsheet.sheets[inputs.worksheet] : undefined
  return [
    {
      id: "spreadsheet",
      title: "Spreadsheet",
      required: true,
      invalidates: true,
      choices: Object.entries(spreadsheets).map(([value, s]) => ({ value, label: s.title }))
    },
    ...(spreadsheet === undefined
      ? []
      : [
          {
            id: "worksheet",
            title: "Worksheet",
            required: true,
            invalidates: true,
            dependsOn: ["spreadsheet"],
            choices: Object.keys(spreadsheet.sheets).map((value, i) => ({ value, label: `Sheet${i + 1}` }))
          } satisfies InputFieldSeed
        ]),
    ...(columns ?? []).map(
      (title, i): InputFieldSeed => ({
        id: `COL$${String.fromCharCode(65 + i)}`,
        title,
        required: i === 0,
        valueType: title === "Amount" ? "NUMBER" : "STRING",
        dependsOn: ["worksheet"]
      })
    )
  ]
}

/**
 * A ready catalog for examples and tests: a Slack-like app with a succeeding, a failing and a never-finishing
 * action (plus a SEARCH and an instant READ), a spreadsheet app with a 10 s action, and an app without
 * authentication. No users or connections: the flow starts with none. Register a partner key for the HTTP server
 * with `FakeZapierServer` / `PartnerKey.register`.
 *
 * Input fields: `send_channel_message` takes `channel` (required, a dropdown of {@link sampleChannels}), `text`
 * (required), `send_as_bot` (a boolean that `invalidates`: when `true`, `bot_name` (required) and `bot_icon`
 * appear), an info field, and a fieldset "Advanced" with `unfurl_links` (boolean, default `true`) and `mentions`
 * (a list of strings); its output fields are `ok`, `channel`, `text`, `ts`. `create_spreadsheet_row` has
 * `spreadsheet`, then `worksheet` once a spreadsheet is chosen, then one field per column (`COL$A`, …) once a
 * worksheet is chosen. `uppercase` takes `text` (required).
 * @since 0.1.0
 * @category fixtures
 */
export const sampleSeed: Seed = {
  partner: { clientId: sample.clientId, clientSecret: sample.clientSecret, issuer: sample.issuer },
  apps: [
    {
      id: sample.slack,
      title: "Slack",
      service: "SlackAPI",
      description: "Slack is a channel-based messaging platform.",
      categories: ["team-chat", "communication"],
      actions: [
        {
          key: sample.sendChannelMessage,
          actionType: "WRITE",
          title: "Send Channel Message",
          description: "Posts a new message to a specific #channel you choose.",
          run: RunScript.succeed("2 seconds", (inputs) => [
            { ok: true, channel: inputs.channel ?? null, text: inputs.text ?? null, ts: "1711900000.000100" }
          ]),
          inputFields: [
            {
              id: "channel",
              title: "Channel",
              description: "The channel to post to.",
              required: true,
              choices: channelChoices
            },
            {
              id: "text",
              title: "Message Text",
              description: "The text of the message.",
              required: true,
              format: "MULTILINE",
              placeholder: "Hello from the workflow"
            },
            {
              id: "send_as_bot",
              title: "Send as a Bot?",
              valueType: "BOOLEAN",
              invalidates: true,
              default: "false"
            },
            {
              id: "bot_name",
              title: "Bot Name",
              required: true,
              dependsOn: ["send_as_bot"],
              when: (inputs) => inputs.send_as_bot === true
            },
            {
              id: "bot_icon",
              title: "Bot Icon",
              description: "An emoji such as :robot_face:",
              dependsOn: ["send_as_bot"],
              when: (inputs) => inputs.send_as_bot === true
            },
            {
              type: "info",
              id: "posting_as",
              description: "Messages are posted as the connected Slack user unless sent as a bot."
            },
            {
              type: "fieldset",
              id: "advanced",
              title: "Advanced",
              fields: [
                { id: "unfurl_links", title: "Unfurl Links", valueType: "BOOLEAN", default: "true" },
                { id: "mentions", title: "Mention Users", list: true, description: "User ids to mention." }
              ]
            }
          ],
          outputFields: [
            { id: "ok", title: "OK", sample: true },
            { id: "channel", title: "Channel", sample: "#general" },
            { id: "text", title: "Message Text", sample: "Hello" },
            { id: "ts", title: "Timestamp", sample: "1711900000.000100" }
          ]
        },
        {
          key: sample.sendDirectMessage,
          actionType: "WRITE",
          title: "Send Direct Message",
          description: "Sends a direct message to a user.",
          run: RunScript.fail("1 second", [
            { code: "user", title: "User not found", detail: "No Slack user matches the given username." }
          ]),
          inputFields: [
            { id: "user", title: "User", choices: ["U024BE7LH", "U061F7AUR"] },
            { id: "text", title: "Message Text", required: true }
          ]
        },
        {
          key: sample.exportChannelHistory,
          actionType: "WRITE",
          title: "Export Channel History",
          description: "Exports the whole history of a channel (never finishes in the fake).",
          run: RunScript.pending,
          inputFields: [{ id: "channel", title: "Channel", required: true, choices: channelChoices }]
        },
        {
          key: sample.findUserByEmail,
          actionType: "SEARCH",
          title: "Find User by Email",
          run: RunScript.succeed("500 millis", (inputs) => [
            { id: "U024BE7LH", email: inputs.email ?? null, name: "sample.user" }
          ]),
          inputFields: [{ id: "email", title: "Email", required: true }]
        },
        {
          key: sample.listChannels,
          actionType: "READ",
          title: "List Channels",
          isInstant: true,
          run: RunScript.succeed(0, [
            { id: "C01", name: "general" },
            { id: "C02", name: "random" }
          ])
        }
      ]
    },
    {
      id: sample.sheets,
      title: "Google Sheets",
      service: "GoogleSheetsV2API",
      categories: ["spreadsheets"],
      actions: [
        {
          key: sample.createSpreadsheetRow,
          actionType: "WRITE",
          title: "Create Spreadsheet Row",
          run: RunScript.succeed("10 seconds", (inputs) => [{ row: 2, values: inputs }]),
          inputFields: spreadsheetRowFields
        }
      ]
    },
    {
      id: sample.formatter,
      title: "Formatter",
      service: "FormatterAPI",
      categories: ["developer-tools"],
      requiresAuth: false,
      actions: [
        {
          key: sample.uppercase,
          actionType: "WRITE",
          title: "Uppercase Text",
          run: RunScript.succeed("500 millis", (inputs) => [
            { output: typeof inputs.text === "string" ? inputs.text.toUpperCase() : "" }
          ]),
          inputFields: [{ id: "text", title: "Text", required: true }],
          outputFields: [{ id: "output", title: "Output", sample: "HELLO" }]
        }
      ]
    }
  ]
}
