/**
 * The state and rules of the fake Zapier, shared by the in-memory layer and the HTTP server. Everything lives in
 * one `Ref` of persistent data (HashMap, Chunk); time is the `Clock` captured when the model is made.
 *
 * @internal
 */
import { Domain, Errors } from "@effect-zapier/core"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as FZ from "../FakeZapier.js"

// ---------------------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------------------

export interface Partner {
  readonly clientId: string
  readonly clientSecret: string
  readonly issuer: string
  readonly audience: string
  readonly keys: ReadonlyArray<FZ.PartnerKeySeed>
  readonly userClaim: string
  readonly tenantClaim: string
  readonly redirectUris: ReadonlyArray<string> | undefined
}

export interface UserRecord {
  readonly user: Domain.EndUser
  readonly zapierUserId: string
  readonly provisionedAt: number
}

export interface ActionRecord {
  readonly key: Domain.ActionKey
  readonly actionType: Domain.ActionType
  readonly title: string
  readonly description: string | undefined
  readonly isInstant: boolean
  readonly script: FZ.RunScript
  readonly inputFields: FZ.ActionSeed["inputFields"]
  readonly outputFields: FZ.ActionSeed["outputFields"]
}

export interface AppRecord {
  readonly id: Domain.AppId
  readonly title: string
  readonly service: string
  readonly description: string | undefined
  readonly categories: ReadonlyArray<string>
  readonly requiresAuth: boolean
  readonly actions: ReadonlyArray<ActionRecord>
}

export interface ConnectionRecord {
  readonly id: Domain.ConnectionId
  readonly app: Domain.AppId
  readonly userKey: string
  readonly user: Domain.EndUser
  readonly title: string
  readonly isExpired: boolean
  readonly seq: number
}

export interface IssuedAction {
  readonly id: Domain.ActionId
  readonly app: Domain.AppId
  readonly key: Domain.ActionKey
  readonly actionType: Domain.ActionType
  readonly title: string
  readonly description: string | undefined
  readonly isInstant: boolean
}

interface IssuedActionRecord {
  readonly userKey: string
  readonly action: IssuedAction
}

export interface RunErrorView {
  readonly code: string
  readonly title: string
  readonly detail: string | undefined
  readonly delaySeconds: number | undefined
}

type Outcome =
  | { readonly _tag: "Succeed"; readonly at: number; readonly results: ReadonlyArray<unknown> }
  | { readonly _tag: "Fail"; readonly at: number; readonly errors: ReadonlyArray<RunErrorView> }
  | { readonly _tag: "Pending" }

interface RunRecord {
  readonly id: Domain.ActionRunId
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly actionId: Domain.ActionId
  readonly connection: Domain.ConnectionId | null
  readonly inputs: Readonly<Record<string, unknown>>
  readonly createdAt: number
  readonly outcome: Outcome
  readonly seq: number
}

export interface RunView {
  readonly id: Domain.ActionRunId
  readonly status: FZ.RunStatus
  readonly results: ReadonlyArray<unknown>
  readonly errors: ReadonlyArray<RunErrorView>
}

interface AccessTokenRecord {
  readonly user: Domain.EndUser
  readonly expiresAt: number
  readonly scope: string
  readonly revoked: boolean
}

interface ConnectTokenRecord {
  readonly user: Domain.EndUser
  readonly app: string
  readonly resource: string
  readonly expiresAt: number
  readonly used: boolean
}

interface SessionRecord {
  readonly id: string
  readonly user: Domain.EndUser
  readonly app: Domain.AppId
  readonly service: string
  readonly appTitle: string
  readonly state: string | undefined
  readonly redirectUri: string | undefined
  readonly reconnect: Domain.ConnectionId | undefined
  readonly expiresAt: number
  readonly done: boolean
}

interface RuleState {
  readonly rule: FZ.FaultRule
  readonly seen: number
  readonly fired: number
}

interface LedgerState {
  readonly requests: Chunk.Chunk<FZ.RequestEntry>
  readonly exchanges: Chunk.Chunk<FZ.ExchangeEntry>
  readonly lookups: Chunk.Chunk<FZ.LookupEntry>
  readonly runs: Chunk.Chunk<FZ.RunEntry>
  readonly polls: Chunk.Chunk<FZ.PollEntry>
  readonly connects: Chunk.Chunk<FZ.ConnectEntry>
}

interface State {
  readonly partner: Partner
  readonly users: HashMap.HashMap<string, UserRecord>
  readonly apps: ReadonlyArray<AppRecord>
  readonly connections: HashMap.HashMap<string, ConnectionRecord>
  readonly actionIds: HashMap.HashMap<string, IssuedActionRecord>
  readonly runs: HashMap.HashMap<string, RunRecord>
  readonly accessTokens: HashMap.HashMap<string, AccessTokenRecord>
  readonly connectTokens: HashMap.HashMap<string, ConnectTokenRecord>
  readonly sessions: HashMap.HashMap<string, SessionRecord>
  readonly jtis: HashMap.HashMap<string, number>
  readonly scripts: HashMap.HashMap<string, ReadonlyArray<FZ.RunScript>>
  readonly faults: ReadonlyArray<RuleState>
  readonly rateLimit: {
    readonly perMinute: number | undefined
    readonly window: Chunk.Chunk<number>
    readonly cooldownUntil: number
  }
  readonly seq: number
  readonly ledger: LedgerState
}

// ---------------------------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------------------------

/** A Zapier API error (`errors[]` item) with its HTTP status. */
export interface ApiFailure {
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  readonly retryAfterSeconds?: number | undefined
  /** How `Retry-After` is written (default: delta seconds). */
  readonly retryAfterFormat?: "seconds" | "http-date" | undefined
  readonly parameter?: string | undefined
  readonly resource?: string | undefined
}

const statusTitles: Record<number, readonly [string, string, string]> = {
  400: ["invalid", "ValidationError", "Invalid input."],
  401: ["authentication_failed", "AuthenticationFailed", "Incorrect authentication credentials."],
  403: ["permission_denied", "PermissionDenied", "You do not have permission to perform this action."],
  404: ["not_found", "NotFound", "Not found."],
  409: ["conflict", "Conflict", "Conflict."],
  429: ["throttled", "Throttled", "Request was throttled."],
  500: ["error", "APIException", "A server error occurred."],
  502: ["bad_gateway", "BadGateway", "Bad gateway."],
  503: ["service_unavailable", "ServiceUnavailable", "Service temporarily unavailable, try again later."],
  504: ["gateway_timeout", "GatewayTimeout", "Gateway timeout."]
}

export const ApiFailure = {
  invalid: (detail: string, parameter?: string): ApiFailure => ({
    status: 400,
    code: "invalid",
    title: "ValidationError",
    detail,
    parameter
  }),
  parseError: (detail = "Malformed request."): ApiFailure => ({
    status: 400,
    code: "parse_error",
    title: "ParseError",
    detail
  }),
  notAuthenticated: (): ApiFailure => ({
    status: 401,
    code: "not_authenticated",
    title: "NotAuthenticated",
    detail: "Authentication credentials were not provided."
  }),
  authenticationFailed: (detail: string): ApiFailure => ({
    status: 401,
    code: "authentication_failed",
    title: "AuthenticationFailed",
    detail
  }),
  notFound: (resource: string, detail = "Not found."): ApiFailure => ({
    status: 404,
    code: "not_found",
    title: "NotFound",
    detail,
    resource
  }),
  throttled: (seconds: number): ApiFailure => ({
    status: 429,
    code: "throttled",
    title: "Throttled",
    detail: `Request was throttled. Expected available in ${seconds} seconds.`,
    retryAfterSeconds: seconds
  }),
  fromStatus: (
    status: number,
    code?: string,
    detail?: string,
    retryAfter?: Duration.DurationInput,
    retryAfterFormat?: "seconds" | "http-date"
  ): ApiFailure => {
    const [defaultCode, title, defaultDetail] = statusTitles[status] ?? ["error", "APIException", `HTTP ${status}`]
    return {
      status,
      code: code ?? defaultCode,
      title,
      detail: detail ?? defaultDetail,
      retryAfterSeconds:
        retryAfter !== undefined ? Math.ceil(Duration.toMillis(Duration.decode(retryAfter)) / 1000) : undefined,
      ...(retryAfterFormat !== undefined ? { retryAfterFormat } : {})
    }
  }
}

/** An RFC 6749 token-endpoint error. */
export interface OAuthFailure {
  readonly status: number
  readonly error: string
  readonly description: string
  readonly retryAfterSeconds?: number | undefined
  readonly retryAfterFormat?: "seconds" | "http-date" | undefined
}

const oauth = (status: number, error: string, description: string): OAuthFailure => ({ status, error, description })

/** A token-endpoint error for an injected status fault. */
export const oauthFromApi = (failure: ApiFailure, code?: string): OAuthFailure => {
  const error =
    code ??
    (failure.status === 401
      ? "invalid_client"
      : failure.status === 400
        ? "invalid_grant"
        : failure.status === 429
          ? "slow_down"
          : failure.status === 503
            ? "temporarily_unavailable"
            : "server_error")
  return {
    status: failure.status,
    error,
    description: failure.detail,
    retryAfterSeconds: failure.retryAfterSeconds,
    ...(failure.retryAfterFormat !== undefined ? { retryAfterFormat: failure.retryAfterFormat } : {})
  }
}

/** Connect UI refused the session: the spec's §3.4 error (redirected when `redirectUri` is set). */
export interface ConnectRefusal {
  readonly _tag: "Refused"
  readonly error: string
  readonly description: string
  readonly state: string | undefined
  readonly redirectUri: string | undefined
}

export type ConnectOutcome =
  | {
      readonly _tag: "Approved"
      readonly connection: ConnectionRecord
      readonly service: string
      readonly state: string | undefined
      readonly redirectUri: string | undefined
    }
  | {
      readonly _tag: "Denied"
      readonly error: string
      readonly description: string
      readonly state: string | undefined
      readonly redirectUri: string | undefined
    }
  | ConnectRefusal

/** The redirect query Connect UI sends for an outcome. */
export const redirectQuery = (outcome: ConnectOutcome): Record<string, string> => {
  const state = outcome.state !== undefined ? { state: outcome.state } : {}
  return outcome._tag === "Approved"
    ? { authentication_id: outcome.connection.id, service: outcome.service, ...state }
    : { error: outcome.error, error_description: outcome.description, ...state }
}

/** The popup `postMessage` data Connect UI sends for an outcome. */
export const popupMessage = (outcome: ConnectOutcome): FZ.ConnectCallbackPayload =>
  outcome._tag === "Approved"
    ? {
        type: "authenticationSuccess",
        authId: /^\d{1,15}$/.test(outcome.connection.id) ? Number(outcome.connection.id) : outcome.connection.id
      }
    : { type: "authenticationError", error: { error: outcome.error, error_description: outcome.description } }

const toPayload = (outcome: ConnectOutcome, mode: "redirect" | "popup" | undefined): FZ.ConnectCallbackPayload => {
  if (mode === "popup") return popupMessage(outcome)
  const state = outcome.state !== undefined ? { state: outcome.state } : {}
  return outcome._tag === "Approved"
    ? { authentication_id: outcome.connection.id, service: outcome.service, ...state }
    : { error: outcome.error, error_description: outcome.description, ...state }
}

// ---------------------------------------------------------------------------------------------------------------
// The gate: fault plan and rate limit
// ---------------------------------------------------------------------------------------------------------------

export interface RequestInfo {
  readonly method: string
  readonly endpoint: string
  readonly path: string
  readonly user?: Domain.EndUser | undefined
}

/** An answer given byte for byte (the `Respond` fault). */
export interface RawAnswer {
  readonly status: number
  readonly body: string
  readonly contentType: string
  readonly headers: Readonly<Record<string, string>>
}

/** What to do after processing a request that was let through. */
export type AfterFault =
  | { readonly _tag: "Fail"; readonly failure: ApiFailure; readonly code: string | undefined }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Raw"; readonly answer: RawAnswer }

export type Gate =
  | { readonly _tag: "Proceed"; readonly delay: Duration.Duration | undefined; readonly after: AfterFault | undefined }
  | { readonly _tag: "Fail"; readonly failure: ApiFailure; readonly code: string | undefined }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Raw"; readonly answer: RawAnswer }

const rawAnswer = (f: Extract<FZ.Fault, { readonly _tag: "Respond" }>): RawAnswer => ({
  status: f.status,
  body: f.body,
  contentType: f.contentType ?? "application/json",
  headers: f.headers ?? {}
})

const rateLimited = (endpoint: string) => endpoint.includes(" /v2/")

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

const base64url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const b of bytes) binary += String.fromCharCode(b)
  return globalThis.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** An unguessable token with a readable prefix. */
export const randomToken = (prefix: string, bytes = 24): Effect.Effect<string> =>
  Effect.sync(() => {
    const buffer = new Uint8Array(bytes)
    globalThis.crypto.getRandomValues(buffer)
    return prefix + base64url(buffer)
  })

const randomUuid: Effect.Effect<string> = Effect.sync(() => globalThis.crypto.randomUUID())

export const userKey = (user: Domain.EndUser): string => JSON.stringify([user.tenantId, user.userId])

const sameUser = (a: Domain.EndUser, b: Domain.EndUser) => a.userId === b.userId && a.tenantId === b.tenantId

const toConnection = (c: ConnectionRecord): Domain.Connection =>
  Domain.Connection.make({ id: c.id, app: c.app, title: c.title, isExpired: c.isExpired })

const scriptKey = (app: string, key: string) => JSON.stringify([app, key])

const seconds = (d: Duration.DurationInput): number => Math.ceil(Duration.toMillis(Duration.decode(d)) / 1000)

const toAppRecord = (app: FZ.AppSeed): AppRecord => ({
  id: Domain.AppId.make(app.id),
  title: app.title,
  service: app.service,
  description: app.description,
  categories: app.categories ?? [],
  requiresAuth: app.requiresAuth ?? true,
  actions: app.actions.map(toActionRecord)
})

const toActionRecord = (action: FZ.ActionSeed): ActionRecord => ({
  key: Domain.ActionKey.make(action.key),
  actionType: action.actionType,
  title: action.title,
  description: action.description,
  isInstant: action.isInstant ?? false,
  script: action.run ?? { _tag: "Succeed", after: Duration.seconds(1), results: [] },
  inputFields: action.inputFields,
  outputFields: action.outputFields
})

// ---------------------------------------------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------------------------------------------

/** An input field as the model computed it for a set of inputs. */
export interface InputFieldView {
  readonly kind: "input"
  readonly id: string
  readonly title: string
  readonly description: string
  readonly required: boolean
  readonly default: string
  readonly placeholder: string
  readonly format: string | undefined
  readonly valueType: string
  readonly list: boolean
  readonly dependsOn: ReadonlyArray<string>
  readonly invalidates: boolean
}

export interface InfoFieldView {
  readonly kind: "info"
  readonly id: string
  readonly description: string
}

export interface FieldsetView {
  readonly kind: "fieldset"
  readonly id: string
  readonly title: string
  readonly fields: ReadonlyArray<InputFieldView | InfoFieldView>
}

export type FieldView = InputFieldView | InfoFieldView | FieldsetView

export interface ChoiceView {
  readonly id: string
  readonly label: string
  readonly value: string
}

export interface ChoicesView {
  readonly choices: ReadonlyArray<ChoiceView>
  readonly page: number
  readonly hasNext: boolean
}

export interface OutputFieldView {
  readonly id: string
  readonly title: string
  readonly sample: unknown
}

type Inputs = Readonly<Record<string, unknown>>

const seededFields = (action: ActionRecord, inputs: Inputs): ReadonlyArray<FZ.FieldSeed> => {
  const seed = action.inputFields
  return seed === undefined ? [] : typeof seed === "function" ? seed(inputs) : seed
}

const present = (field: FZ.InputFieldSeed, inputs: Inputs) => field.when === undefined || field.when(inputs)

const inputView = (field: FZ.InputFieldSeed): InputFieldView => ({
  kind: "input",
  id: field.id,
  title: field.title ?? field.id,
  description: field.description ?? "",
  required: field.required ?? false,
  default: field.default ?? "",
  placeholder: field.placeholder ?? "",
  format: field.format ?? (field.choices !== undefined ? "SELECT" : undefined),
  valueType: field.valueType ?? "STRING",
  list: field.list ?? false,
  dependsOn: field.dependsOn ?? [],
  invalidates: field.invalidates ?? false
})

/** The fields of an action for these inputs (dependent fields only while their `when` holds). */
const fieldViews = (action: ActionRecord, inputs: Inputs): ReadonlyArray<FieldView> =>
  seededFields(action, inputs).flatMap((f): ReadonlyArray<FieldView> => {
    if (f.type === "info") return [{ kind: "info", id: f.id, description: f.description }]
    if (f.type === "fieldset") {
      return [
        {
          kind: "fieldset",
          id: f.id,
          title: f.title,
          fields: f.fields.flatMap(
            (x): ReadonlyArray<InputFieldView | InfoFieldView> =>
              x.type === "info"
                ? [{ kind: "info", id: x.id, description: x.description }]
                : present(x, inputs)
                  ? [inputView(x)]
                  : []
          )
        }
      ]
    }
    return present(f, inputs) ? [inputView(f)] : []
  })

/** The seed of the input field `id` for these inputs, wherever it is. */
const findFieldSeed = (action: ActionRecord, inputs: Inputs, id: string): FZ.InputFieldSeed | undefined => {
  for (const f of seededFields(action, inputs)) {
    if (f.type === "info") continue
    if (f.type === "fieldset") {
      const inner = f.fields.find((x): x is FZ.InputFieldSeed => x.type !== "info" && x.id === id)
      if (inner !== undefined) return present(inner, inputs) ? inner : undefined
      continue
    }
    if (f.id === id) return present(f, inputs) ? f : undefined
  }
  return undefined
}

const choiceView = (c: FZ.ChoiceSeed): ChoiceView =>
  typeof c === "string"
    ? { id: c, label: c, value: c }
    : { id: c.id ?? c.value, label: c.label ?? c.value, value: c.value }

const appendLedger = <K extends keyof LedgerState>(
  s: State,
  key: K,
  entry: LedgerState[K] extends Chunk.Chunk<infer E> ? E : never
): State => ({
  ...s,
  ledger: { ...s.ledger, [key]: Chunk.append(s.ledger[key] as Chunk.Chunk<typeof entry>, entry) }
})

const emptyLedger: LedgerState = {
  requests: Chunk.empty(),
  exchanges: Chunk.empty(),
  lookups: Chunk.empty(),
  runs: Chunk.empty(),
  polls: Chunk.empty(),
  connects: Chunk.empty()
}

/** The connect URL for an app, as a connect token's `resource` must name it. */
export const connectResource = (connectUrl: string, app: string) =>
  `${connectUrl.replace(/\/+$/, "")}/to/${encodeURIComponent(app)}`

/** callback_url rules of the spec (§5): HTTPS, at most 2048 characters, no private or loopback host. */
const callbackUrlProblem = (url: string): string | undefined => {
  if (url.length > 2048) return "callback_url must be at most 2048 characters."
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "callback_url must be an absolute URL."
  }
  if (parsed.protocol !== "https:") return "callback_url must use HTTPS."
  const host = parsed.hostname.replace(/^\[|\]$/g, "")
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

// ---------------------------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------------------------

export interface Settings {
  readonly connectUrl: string
  readonly choicesPageSize: number
  readonly accessTokenTtlSeconds: number
  readonly connectTokenTtlMillis: number
  readonly scope: string
  /** The rate limit's window and cooldown. */
  readonly rateLimitWindowMillis: number
}

export interface Issued {
  readonly token: string
  readonly expiresIn: number
  readonly scope: string
  readonly issuedAt: number
}

export interface ConnectParams {
  readonly token?: string | undefined
  readonly state?: string | undefined
  readonly redirectUri?: string | undefined
  readonly reconnectId?: string | undefined
}

export interface Session {
  readonly id: string
  readonly appTitle: string
  readonly service: string
  readonly user: Domain.EndUser
  readonly reconnect: Domain.ConnectionId | undefined
  readonly state: string | undefined
  readonly redirectUri: string | undefined
}

export interface FieldsInput {
  readonly authentication: string | null
  readonly inputs: Readonly<Record<string, unknown>>
}

export interface CreateRunInput {
  readonly action: string
  readonly authentication: string | null
  readonly inputs: Readonly<Record<string, unknown>>
  readonly callbackUrl?: string | undefined
}

export interface Model {
  readonly settings: Settings
  readonly clock: Clock.Clock
  readonly now: Effect.Effect<number>
  readonly partner: Effect.Effect<Partner>
  /** Rejects a JWT id seen before (until its `exp`); true when it is new. */
  readonly useJti: (jti: string, exp: number) => Effect.Effect<boolean>
  readonly exchangeAccess: (user: Domain.EndUser, scope: string | undefined) => Effect.Effect<Issued>
  readonly exchangeConnect: (
    subjectToken: string,
    resource: string,
    scope: string | undefined
  ) => Effect.Effect<Issued, OAuthFailure>
  /** A connect token straight from a verified partner JWT (the MCP pattern). */
  readonly connectFor: (
    user: Domain.EndUser,
    resource: string,
    scope: string | undefined
  ) => Effect.Effect<Issued, OAuthFailure>
  readonly authenticate: (token: string) => Effect.Effect<Domain.EndUser, ApiFailure>
  readonly gate: (info: RequestInfo) => Effect.Effect<Gate>
  readonly record: (entry: Omit<FZ.RequestEntry, "at">) => Effect.Effect<void>
  readonly listApps: (query: {
    readonly ids?: ReadonlyArray<string> | undefined
    readonly search?: string | undefined
    readonly category?: string | undefined
    readonly limit: number
    readonly offset: number
  }) => Effect.Effect<{ readonly items: ReadonlyArray<AppRecord>; readonly count: number }>
  readonly inputFields: (
    user: Domain.EndUser,
    actionId: string,
    input: FieldsInput
  ) => Effect.Effect<ReadonlyArray<FieldView>, ApiFailure>
  readonly choices: (
    user: Domain.EndUser,
    actionId: string,
    field: string,
    input: FieldsInput & { readonly page: number }
  ) => Effect.Effect<ChoicesView, ApiFailure>
  readonly outputFields: (
    user: Domain.EndUser,
    actionId: string,
    input: FieldsInput
  ) => Effect.Effect<ReadonlyArray<OutputFieldView>, ApiFailure>
  readonly listConnections: (
    user: Domain.EndUser,
    app: string,
    limit: number,
    offset: number
  ) => Effect.Effect<{ readonly items: ReadonlyArray<ConnectionRecord>; readonly count: number }>
  readonly lookupActions: (
    user: Domain.EndUser,
    app: string,
    actionType: Domain.ActionType | undefined
  ) => Effect.Effect<ReadonlyArray<IssuedAction>, ApiFailure>
  readonly createRun: (user: Domain.EndUser, input: CreateRunInput) => Effect.Effect<Domain.ActionRunId, ApiFailure>
  readonly getRun: (user: Domain.EndUser, runId: string) => Effect.Effect<RunView, ApiFailure>
  /** Starts a Connect UI session: validates and consumes the connect token. */
  readonly openSession: (app: string, params: ConnectParams) => Effect.Effect<Session, ConnectRefusal>
  /** Finishes a session: creates (or reconnects) the connection, or records the denial. */
  readonly finishSession: (
    sessionId: string,
    decision:
      | { readonly _tag: "Approve"; readonly title?: string | undefined }
      | { readonly _tag: "Deny"; readonly error: string; readonly description: string }
  ) => Effect.Effect<ConnectOutcome>
  readonly control: FZ.Control
}

const connectionsOf = (s: State, key: string, app?: string): ReadonlyArray<ConnectionRecord> =>
  Array.from(HashMap.values(s.connections))
    .filter((c) => c.userKey === key && (app === undefined || c.app === app))
    .sort((a, b) => a.seq - b.seq)

const runStatus = (outcome: Outcome, now: number): FZ.RunStatus =>
  outcome._tag === "Pending" || now < outcome.at ? "waiting" : outcome._tag === "Succeed" ? "success" : "error"

const toRunInfo = (r: RunRecord, now: number): FZ.RunInfo => ({
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

const misuse = (method: string, resource: string) => new Errors.NotFound({ endpoint: `FakeZapier.${method}`, resource })

/** Builds a fresh model from a seed, on the `Clock` in scope. */
export const make = (seed: FZ.Seed, overrides?: { readonly connectUrl?: string | undefined }): Effect.Effect<Model> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const now = clock.currentTimeMillis
    const settings: Settings = {
      connectUrl: (overrides?.connectUrl ?? seed.connectUrl ?? "https://connect.zapier.com").replace(/\/+$/, ""),
      choicesPageSize: Math.max(1, seed.choicesPageSize ?? 10),
      accessTokenTtlSeconds: seconds(seed.accessTokenTtl ?? Duration.hours(1)),
      connectTokenTtlMillis: Duration.toMillis(Duration.decode(seed.connectTokenTtl ?? Duration.minutes(6))),
      scope: seed.scope ?? "external action:run connection:read authentication zap zap:write",
      rateLimitWindowMillis: Math.max(
        1,
        Duration.toMillis(Duration.decode(seed.rateLimitWindow ?? Duration.minutes(1)))
      )
    }
    const partner: Partner = {
      clientId: seed.partner?.clientId ?? "fake-client-id",
      clientSecret: seed.partner?.clientSecret ?? "fake-client-secret",
      issuer: seed.partner?.issuer ?? "https://partner.example",
      audience: seed.partner?.audience ?? "connect.zapier.com",
      keys: seed.partner?.keys ?? [],
      userClaim: seed.partner?.userClaim ?? "sub",
      tenantClaim: seed.partner?.tenantClaim ?? "org_id",
      redirectUris: seed.partner?.redirectUris
    }
    const start = yield* now
    let initial: State = {
      partner,
      users: HashMap.empty(),
      apps: (seed.apps ?? []).map(toAppRecord),
      connections: HashMap.empty(),
      actionIds: HashMap.empty(),
      runs: HashMap.empty(),
      accessTokens: HashMap.empty(),
      connectTokens: HashMap.empty(),
      sessions: HashMap.empty(),
      jtis: HashMap.empty(),
      scripts: HashMap.empty(),
      faults: (seed.faults ?? []).map((rule) => ({ rule, seen: 0, fired: 0 })),
      rateLimit: { perMinute: seed.rateLimitPerMinute, window: Chunk.empty(), cooldownUntil: 0 },
      seq: 10000,
      ledger: emptyLedger
    }
    for (const u of seed.users ?? []) {
      const user = Domain.EndUser.make(u.user)
      initial = provision(initial, user, start)
      for (const c of u.connections ?? []) {
        const added = addConnectionTo(initial, user, c.app, c)
        if (added === undefined) return yield* Effect.dieMessage(`FakeZapier seed: unknown app "${c.app}"`)
        initial = added[0]
      }
    }
    const state = yield* Ref.make(initial)

    // --- tokens ---------------------------------------------------------------------------------------------

    const useJti = (jti: string, exp: number) =>
      Effect.flatMap(now, (t) =>
        Ref.modify(state, (s) => {
          const jtis = HashMap.filter(s.jtis, (e) => e * 1000 > t)
          if (HashMap.has(jtis, jti)) return [false, { ...s, jtis }] as const
          return [true, { ...s, jtis: HashMap.set(jtis, jti, exp) }] as const
        })
      )

    const exchangeAccess = (user: Domain.EndUser, scope: string | undefined) =>
      Effect.gen(function* () {
        const t = yield* now
        const token = yield* randomToken("zat_")
        const granted = scope ?? settings.scope
        const expiresIn = settings.accessTokenTtlSeconds
        yield* Ref.update(state, (s) =>
          appendLedger(
            {
              ...provision(s, user, t),
              accessTokens: HashMap.set(s.accessTokens, token, {
                user,
                expiresAt: t + expiresIn * 1000,
                scope: granted,
                revoked: false
              })
            },
            "exchanges",
            { at: t, user, kind: "access", expiresIn }
          )
        )
        return { token, expiresIn, scope: granted, issuedAt: t }
      })

    const findAccess = (token: string, t: number): Effect.Effect<AccessTokenRecord, string> =>
      Effect.flatMap(Ref.get(state), (s) => {
        const record = HashMap.get(s.accessTokens, token)
        if (Option.isNone(record)) return Effect.fail("Invalid token.")
        if (record.value.revoked) return Effect.fail("Token has been revoked.")
        if (t >= record.value.expiresAt) return Effect.fail("Token has expired.")
        return Effect.succeed(record.value)
      })

    const authenticate = (token: string) =>
      Effect.flatMap(now, (t) =>
        findAccess(token, t).pipe(
          Effect.map((r) => r.user),
          Effect.mapError(ApiFailure.authenticationFailed)
        )
      )

    /** A connect token for the user, bound to `resource` (`{connectUrl}/to/{app}`). */
    const connectFor = (user: Domain.EndUser, resource: string, scope: string | undefined) =>
      Effect.gen(function* () {
        const t = yield* now
        const prefix = `${settings.connectUrl}/to/`
        const rest = resource.startsWith(prefix) ? resource.slice(prefix.length) : ""
        if (rest.length === 0 || rest.includes("/") || rest.includes("?") || rest.includes("#")) {
          return yield* Effect.fail(
            oauth(400, "invalid_target", `The resource must be the Connect UI URL of an app: ${prefix}{app}.`)
          )
        }
        const app = decodeURIComponent(rest)
        const token = yield* randomToken("zct_")
        const expiresIn = Math.floor(settings.connectTokenTtlMillis / 1000)
        yield* Ref.update(state, (s) =>
          appendLedger(
            {
              ...provision(s, user, t),
              connectTokens: HashMap.set(s.connectTokens, token, {
                user,
                app,
                resource,
                expiresAt: t + settings.connectTokenTtlMillis,
                used: false
              })
            },
            "exchanges",
            { at: t, user, kind: "connect", app: Domain.AppId.make(app), expiresIn }
          )
        )
        return { token, expiresIn, scope: scope ?? "connection:write", issuedAt: t }
      })

    const exchangeConnect = (subjectToken: string, resource: string, scope: string | undefined) =>
      Effect.gen(function* () {
        const t = yield* now
        const subject = yield* findAccess(subjectToken, t).pipe(
          Effect.mapError((reason) => oauth(400, "invalid_grant", `The subject_token is not usable: ${reason}`))
        )
        return yield* connectFor(subject.user, resource, scope)
      })

    // --- gate -----------------------------------------------------------------------------------------------

    const gate = (info: RequestInfo): Effect.Effect<Gate> =>
      Effect.flatMap(now, (t) =>
        Ref.modify(state, (s): readonly [Gate, State] => {
          let fired: FZ.Fault | undefined
          const faults = s.faults.map((rs) => {
            const matches =
              (rs.rule.endpoint === undefined || rs.rule.endpoint === info.endpoint) &&
              (rs.rule.user === undefined || (info.user !== undefined && sameUser(rs.rule.user, info.user)))
            if (!matches) return rs
            const seen = rs.seen + 1
            if (fired === undefined && seen > (rs.rule.skip ?? 0) && rs.fired < (rs.rule.times ?? 1)) {
              fired = rs.rule.fault
              return { ...rs, seen, fired: rs.fired + 1 }
            }
            return { ...rs, seen }
          })
          const next = { ...s, faults }
          const f = fired as FZ.Fault | undefined
          if (f?._tag === "Status" && !f.afterCommit) {
            return [
              {
                _tag: "Fail",
                failure: ApiFailure.fromStatus(f.status, f.code, f.detail, f.retryAfter, f.retryAfterFormat),
                code: f.code
              },
              next
            ]
          }
          if (f?._tag === "Disconnect" && !f.afterCommit) return [{ _tag: "Drop" }, next]
          if (f?._tag === "Respond" && f.afterCommit === false) return [{ _tag: "Raw", answer: rawAnswer(f) }, next]
          let rate = next.rateLimit
          if (rateLimited(info.endpoint) && rate.perMinute !== undefined) {
            if (t < rate.cooldownUntil) {
              return [
                {
                  _tag: "Fail",
                  failure: ApiFailure.throttled(Math.ceil((rate.cooldownUntil - t) / 1000)),
                  code: undefined
                },
                next
              ]
            }
            const windowMillis = settings.rateLimitWindowMillis
            const window = Chunk.filter(rate.window, (at) => at > t - windowMillis)
            if (Chunk.size(window) >= rate.perMinute) {
              return [
                { _tag: "Fail", failure: ApiFailure.throttled(Math.ceil(windowMillis / 1000)), code: undefined },
                { ...next, rateLimit: { ...rate, window, cooldownUntil: t + windowMillis } }
              ]
            }
            rate = { ...rate, window: Chunk.append(window, t) }
          }
          const after: AfterFault | undefined =
            f?._tag === "Status"
              ? {
                  _tag: "Fail",
                  failure: ApiFailure.fromStatus(f.status, f.code, f.detail, f.retryAfter, f.retryAfterFormat),
                  code: f.code
                }
              : f?._tag === "Disconnect"
                ? { _tag: "Drop" }
                : f?._tag === "MalformedBody"
                  ? { _tag: "Malformed" }
                  : f?._tag === "Respond"
                    ? { _tag: "Raw", answer: rawAnswer(f) }
                    : undefined
          return [
            {
              _tag: "Proceed",
              delay: f?._tag === "Delay" ? Duration.decode(f.duration) : undefined,
              after
            },
            { ...next, rateLimit: rate }
          ]
        })
      )

    const record = (entry: Omit<FZ.RequestEntry, "at">) =>
      Effect.flatMap(now, (t) => Ref.update(state, (s) => appendLedger(s, "requests", { at: t, ...entry })))

    // --- catalog and connections ----------------------------------------------------------------------------

    const listApps = (query: {
      readonly ids?: ReadonlyArray<string> | undefined
      readonly search?: string | undefined
      readonly category?: string | undefined
      readonly limit: number
      readonly offset: number
    }) =>
      Effect.map(Ref.get(state), (s) => {
        const search = query.search?.toLowerCase()
        const all = s.apps.filter(
          (a) =>
            (query.ids === undefined || query.ids.includes(a.id)) &&
            (search === undefined || a.title.toLowerCase().includes(search) || a.id.includes(search)) &&
            (query.category === undefined || a.categories.includes(query.category))
        )
        return { items: all.slice(query.offset, query.offset + query.limit), count: all.length }
      })

    const listConnections = (user: Domain.EndUser, app: string, limit: number, offset: number) =>
      Effect.map(Ref.get(state), (s) => {
        const all = connectionsOf(s, userKey(user), app)
        return { items: all.slice(offset, offset + limit), count: all.length }
      })

    const lookupActions = (user: Domain.EndUser, app: string, actionType: Domain.ActionType | undefined) =>
      Effect.gen(function* () {
        const t = yield* now
        const s = yield* Ref.get(state)
        const record = s.apps.find((a) => a.id === app)
        if (record === undefined) return yield* Effect.fail(ApiFailure.notFound(`app ${app}`, `App ${app} not found.`))
        const matching = record.actions.filter((a) => actionType === undefined || a.actionType === actionType)
        const issued: Array<IssuedAction> = []
        for (const a of matching) {
          issued.push({
            id: Domain.ActionId.make(`uag:${yield* randomUuid}`),
            app: record.id,
            key: a.key,
            actionType: a.actionType,
            title: a.title,
            description: a.description,
            isInstant: a.isInstant
          })
        }
        const key = userKey(user)
        yield* Ref.update(state, (s) =>
          appendLedger(
            {
              ...s,
              actionIds: issued.reduce(
                (ids, action) => HashMap.set(ids, action.id, { userKey: key, action }),
                s.actionIds
              )
            },
            "lookups",
            { at: t, user, app: record.id, actionType, ids: issued.map((a) => a.id) }
          )
        )
        return issued
      })

    // --- fields ---------------------------------------------------------------------------------------------

    /** The action behind an id issued to this user, and a check of the authentication (as for a run). */
    const actionFor = (user: Domain.EndUser, actionId: string, authentication: string | null) =>
      Effect.gen(function* () {
        const s = yield* Ref.get(state)
        const key = userKey(user)
        const issued = HashMap.get(s.actionIds, actionId)
        if (Option.isNone(issued) || issued.value.userKey !== key) {
          return yield* Effect.fail(
            ApiFailure.notFound(
              `action ${actionId}`,
              "Unknown action id. Look the action up (GET /v2/actions) and use the id it returns."
            )
          )
        }
        const app = s.apps.find((a) => a.id === issued.value.action.app)
        const definition = app?.actions.find((a) => a.key === issued.value.action.key)
        if (app === undefined || definition === undefined) {
          return yield* Effect.fail(ApiFailure.notFound(`action ${actionId}`, "The action no longer exists."))
        }
        if (authentication !== null) {
          const found = HashMap.get(s.connections, authentication)
          if (Option.isNone(found) || found.value.userKey !== key || found.value.app !== app.id) {
            return yield* Effect.fail(
              ApiFailure.invalid(
                `Authentication ${authentication} was not found among this user's connections to ${app.id}.`,
                "authentication"
              )
            )
          }
        } else if (app.requiresAuth) {
          return yield* Effect.fail(ApiFailure.invalid(`${app.title} requires an authentication.`, "authentication"))
        }
        return definition
      })

    const inputFields = (user: Domain.EndUser, actionId: string, input: FieldsInput) =>
      Effect.map(actionFor(user, actionId, input.authentication), (action) => fieldViews(action, input.inputs))

    const choices = (
      user: Domain.EndUser,
      actionId: string,
      field: string,
      input: FieldsInput & { readonly page: number }
    ) =>
      Effect.gen(function* () {
        const action = yield* actionFor(user, actionId, input.authentication)
        if (!Number.isInteger(input.page) || input.page < 1) {
          return yield* Effect.fail(ApiFailure.invalid("page must be a whole number from 1.", "page"))
        }
        const seed = findFieldSeed(action, input.inputs, field)
        if (seed === undefined) {
          return yield* Effect.fail(ApiFailure.notFound(`input ${field}`, `The action has no input field ${field}.`))
        }
        if (seed.choices === undefined) {
          return yield* Effect.fail(ApiFailure.invalid(`The input field ${field} has no choices.`, "input_id"))
        }
        const all = (typeof seed.choices === "function" ? seed.choices(input.inputs) : seed.choices).map(choiceView)
        const size = settings.choicesPageSize
        const start = (input.page - 1) * size
        return {
          choices: all.slice(start, start + size),
          page: input.page,
          hasNext: start + size < all.length
        } satisfies ChoicesView
      })

    const outputFields = (user: Domain.EndUser, actionId: string, input: FieldsInput) =>
      Effect.map(actionFor(user, actionId, input.authentication), (action): ReadonlyArray<OutputFieldView> => {
        const seed = action.outputFields
        const fields = seed === undefined ? [] : typeof seed === "function" ? seed(input.inputs) : seed
        return fields.map((f) => ({ id: f.id, title: f.title ?? f.id, sample: f.sample }))
      })

    // --- runs -----------------------------------------------------------------------------------------------

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
          const problem = callbackUrlProblem(input.callbackUrl)
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
        yield* Ref.update(state, (s) =>
          appendLedger(
            {
              ...s,
              seq: s.seq + 1,
              runs: HashMap.set(s.runs, runId, run),
              scripts:
                queued !== undefined && queued.length > 1 ? HashMap.set(s.scripts, sk, queued.slice(1)) : s.scripts
            },
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
        )
        return runId
      })

    const getRun = (user: Domain.EndUser, runId: string) =>
      Effect.gen(function* () {
        const t = yield* now
        const s = yield* Ref.get(state)
        const run = HashMap.get(s.runs, runId)
        if (Option.isNone(run) || !sameUser(run.value.user, user)) {
          return yield* Effect.fail(ApiFailure.notFound(`run ${runId}`))
        }
        const outcome = run.value.outcome
        const status = runStatus(outcome, t)
        yield* Ref.update(state, (s) => appendLedger(s, "polls", { at: t, user, runId: run.value.id, status }))
        return {
          id: run.value.id,
          status,
          results: status === "success" && outcome._tag === "Succeed" ? outcome.results : [],
          errors: status === "error" && outcome._tag === "Fail" ? outcome.errors : []
        } satisfies RunView
      })

    // --- Connect UI -----------------------------------------------------------------------------------------

    const refuse = (
      app: string,
      user: Domain.EndUser | undefined,
      error: string,
      description: string,
      params: ConnectParams,
      redirect: boolean
    ) =>
      Effect.flatMap(now, (t) =>
        Effect.zipRight(
          Ref.update(state, (s) =>
            appendLedger(s, "connects", { at: t, user, app, outcome: "refused", error, description })
          ),
          Effect.fail<ConnectRefusal>({
            _tag: "Refused",
            error,
            description,
            state: params.state,
            redirectUri: redirect ? params.redirectUri : undefined
          })
        )
      )

    const openSession = (app: string, params: ConnectParams) =>
      Effect.gen(function* () {
        const t = yield* now
        const s = yield* Ref.get(state)
        const registered =
          params.redirectUri === undefined ||
          s.partner.redirectUris === undefined ||
          s.partner.redirectUris.includes(params.redirectUri)
        if (!registered) {
          return yield* refuse(app, undefined, "invalid_request", "Invalid redirect_uri", params, false)
        }
        const record =
          params.token === undefined ? undefined : Option.getOrUndefined(HashMap.get(s.connectTokens, params.token))
        if (record === undefined || record.used) {
          return yield* refuse(app, record?.user, "invalid_request", "Invalid token", params, true)
        }
        // The session starts: the token is spent whatever happens next.
        yield* Ref.update(state, (s) => ({
          ...s,
          connectTokens: HashMap.set(s.connectTokens, params.token!, { ...record, used: true })
        }))
        if (t >= record.expiresAt) {
          return yield* refuse(app, record.user, "invalid_request", "Token expired", params, true)
        }
        if (record.app !== app) {
          return yield* refuse(app, record.user, "invalid_request", "Invalid token", params, true)
        }
        const appRecord = s.apps.find((a) => a.id === app)
        if (appRecord === undefined) {
          return yield* refuse(app, record.user, "invalid_request", "Invalid app", params, true)
        }
        if (!HashMap.has(s.users, userKey(record.user))) {
          return yield* refuse(app, record.user, "access_denied", "User not found", params, true)
        }
        let reconnect: Domain.ConnectionId | undefined
        if (params.reconnectId !== undefined) {
          const existing = Option.getOrUndefined(HashMap.get(s.connections, params.reconnectId))
          if (existing === undefined || existing.userKey !== userKey(record.user) || existing.app !== appRecord.id) {
            return yield* refuse(app, record.user, "invalid_request", "Invalid reconnect_id", params, true)
          }
          reconnect = existing.id
        }
        const id = yield* randomToken("cs_", 16)
        const session: SessionRecord = {
          id,
          user: record.user,
          app: appRecord.id,
          service: appRecord.service,
          appTitle: appRecord.title,
          state: params.state,
          redirectUri: params.redirectUri,
          reconnect,
          expiresAt: t + 30 * 60_000,
          done: false
        }
        yield* Ref.update(state, (s) => ({ ...s, sessions: HashMap.set(s.sessions, id, session) }))
        return {
          id,
          appTitle: appRecord.title,
          service: appRecord.service,
          user: record.user,
          reconnect,
          state: params.state,
          redirectUri: params.redirectUri
        } satisfies Session
      })

    const finishSession = (
      sessionId: string,
      decision:
        | { readonly _tag: "Approve"; readonly title?: string | undefined }
        | { readonly _tag: "Deny"; readonly error: string; readonly description: string }
    ): Effect.Effect<ConnectOutcome> =>
      Effect.flatMap(now, (t) =>
        Ref.modify(state, (s): readonly [ConnectOutcome, State] => {
          const session = Option.getOrUndefined(HashMap.get(s.sessions, sessionId))
          if (session === undefined || session.done || t >= session.expiresAt) {
            const refused: ConnectRefusal = {
              _tag: "Refused",
              error: "server_error",
              description: "Session initialization failed",
              state: session?.state,
              redirectUri: session?.redirectUri
            }
            return [
              refused,
              appendLedger(s, "connects", {
                at: t,
                user: session?.user,
                app: session?.app ?? "",
                outcome: "refused",
                error: refused.error,
                description: refused.description
              })
            ]
          }
          const closed = { ...s, sessions: HashMap.set(s.sessions, sessionId, { ...session, done: true }) }
          if (decision._tag === "Deny") {
            return [
              {
                _tag: "Denied",
                error: decision.error,
                description: decision.description,
                state: session.state,
                redirectUri: session.redirectUri
              },
              appendLedger(closed, "connects", {
                at: t,
                user: session.user,
                app: session.app,
                outcome: "denied",
                error: decision.error,
                description: decision.description
              })
            ]
          }
          let next: State
          let connection: ConnectionRecord
          const existing =
            session.reconnect !== undefined
              ? Option.getOrUndefined(HashMap.get(closed.connections, session.reconnect))
              : undefined
          if (existing !== undefined) {
            connection = { ...existing, isExpired: false, title: decision.title ?? existing.title }
            next = { ...closed, connections: HashMap.set(closed.connections, existing.id, connection) }
          } else {
            const added = addConnectionTo(closed, session.user, session.app, {
              title: decision.title ?? `${session.appTitle} ${session.user.userId}`
            })!
            next = added[0]
            connection = added[1]
          }
          return [
            {
              _tag: "Approved",
              connection,
              service: session.service,
              state: session.state,
              redirectUri: session.redirectUri
            },
            appendLedger(next, "connects", {
              at: t,
              user: session.user,
              app: session.app,
              outcome: "approved",
              connection: connection.id,
              reconnect: existing !== undefined
            })
          ]
        })
      )

    // --- control --------------------------------------------------------------------------------------------

    const parseLink = (link: Domain.ConnectLink | string): Effect.Effect<{ app: string; params: ConnectParams }> =>
      Effect.gen(function* () {
        const raw = typeof link === "string" ? link : link.url
        let url: URL | undefined
        try {
          url = new URL(raw)
        } catch {
          url = undefined
        }
        if (url === undefined) {
          // A bare connect token: the app is the one it was minted for.
          const s = yield* Ref.get(state)
          const record = Option.getOrUndefined(HashMap.get(s.connectTokens, raw))
          return { app: record?.app ?? "", params: { token: raw } }
        }
        const match = /\/to\/([^/]+)\/?$/.exec(url.pathname)
        const q = url.searchParams
        const opt = (name: string) => q.get(name) ?? undefined
        return {
          app: match ? decodeURIComponent(match[1]!) : "",
          params: {
            token: opt("token"),
            state: opt("state"),
            redirectUri: opt("redirect_uri"),
            reconnectId: opt("reconnect_id")
          }
        }
      })

    const finishLink = (
      link: Domain.ConnectLink | string,
      mode: "redirect" | "popup" | undefined,
      decision:
        | { readonly _tag: "Approve"; readonly title?: string | undefined }
        | { readonly _tag: "Deny"; readonly error: string; readonly description: string }
    ) =>
      Effect.gen(function* () {
        const { app, params } = yield* parseLink(link)
        const outcome = yield* openSession(app, params).pipe(
          Effect.flatMap((session) => finishSession(session.id, decision)),
          Effect.merge
        )
        return toPayload(outcome, mode)
      })

    const findApp = (method: string, app: string) =>
      Effect.flatMap(Ref.get(state), (s) => {
        const found = s.apps.find((a) => a.id === app)
        return found ? Effect.succeed(found) : Effect.fail(misuse(method, `app ${app}`))
      })

    const control: FZ.Control = {
      connectUrl: settings.connectUrl,
      addApp: Effect.fn("FakeZapier.addApp")(function* (app: FZ.AppSeed) {
        const record = toAppRecord(app)
        yield* Ref.update(state, (s) => ({
          ...s,
          apps: s.apps.some((a) => a.id === record.id)
            ? s.apps.map((a) => (a.id === record.id ? record : a))
            : [...s.apps, record]
        }))
      }),
      addAction: Effect.fn("FakeZapier.addAction")(function* (app: string, action: FZ.ActionSeed) {
        yield* findApp("addAction", app)
        const record = toActionRecord(action)
        yield* Ref.update(state, (s) => ({
          ...s,
          apps: s.apps.map((a) =>
            a.id === app ? { ...a, actions: [...a.actions.filter((x) => x.key !== record.key), record] } : a
          )
        }))
      }),
      addUser: Effect.fn("FakeZapier.addUser")(function* (user: Domain.EndUser) {
        const t = yield* now
        yield* Ref.update(state, (s) => provision(s, user, t))
      }),
      addConnection: Effect.fn("FakeZapier.addConnection")(function* (
        user: Domain.EndUser,
        app: string,
        options?: Omit<FZ.ConnectionSeed, "app">
      ) {
        const t = yield* now
        const result = yield* Ref.modify(state, (s) => {
          const added = addConnectionTo(provision(s, user, t), user, app, options ?? {})
          return added === undefined ? [undefined, s] : ([added[1], added[0]] as const)
        })
        if (result === undefined) return yield* misuse("addConnection", `app ${app}`)
        return toConnection(result)
      }),
      expireConnection: Effect.fn("FakeZapier.expireConnection")(function* (connection: string) {
        const found = yield* Ref.modify(state, (s) => {
          const c = HashMap.get(s.connections, connection)
          return Option.isNone(c)
            ? [false, s]
            : ([
                true,
                { ...s, connections: HashMap.set(s.connections, connection, { ...c.value, isExpired: true }) }
              ] as const)
        })
        if (!found) return yield* misuse("expireConnection", `connection ${connection}`)
      }),
      connections: Effect.fn("FakeZapier.connections")(function* (user: Domain.EndUser, app?: string) {
        const s = yield* Ref.get(state)
        return connectionsOf(s, userKey(user), app).map(toConnection)
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
        if (Option.isNone(run)) return yield* misuse("run", `run ${runId}`)
        return toRunInfo(run.value, t)
      }),
      runs: Effect.gen(function* () {
        const t = yield* now
        const s = yield* Ref.get(state)
        return Array.from(HashMap.values(s.runs))
          .sort((a, b) => a.seq - b.seq)
          .map((r) => toRunInfo(r, t))
      }).pipe(Effect.withSpan("FakeZapier.runs")),
      approveConnect: Effect.fn("FakeZapier.approveConnect")(function* (
        link: Domain.ConnectLink | string,
        options?: FZ.ConnectOptions
      ) {
        return yield* finishLink(link, options?.mode, { _tag: "Approve", title: options?.title })
      }),
      denyConnect: Effect.fn("FakeZapier.denyConnect")(function* (
        link: Domain.ConnectLink | string,
        options?: FZ.DenyOptions
      ) {
        return yield* finishLink(link, options?.mode, {
          _tag: "Deny",
          error: options?.error ?? "server_error",
          description: options?.description ?? "OAuth Failed: access_denied"
        })
      }),
      revokeTokens: Effect.fn("FakeZapier.revokeTokens")(function* (user: Domain.EndUser) {
        yield* Ref.update(state, (s) => ({
          ...s,
          accessTokens: HashMap.map(s.accessTokens, (r) => (sameUser(r.user, user) ? { ...r, revoked: true } : r))
        }))
      }),
      addPartnerKey: Effect.fn("FakeZapier.addPartnerKey")(function* (key: FZ.PartnerKeySeed) {
        yield* Ref.update(state, (s) => ({
          ...s,
          partner: { ...s.partner, keys: [...s.partner.keys.filter((k) => k.kid !== key.kid), key] }
        }))
      }),
      injectFault: Effect.fn("FakeZapier.injectFault")(function* (rule: FZ.FaultRule) {
        yield* Ref.update(state, (s) => ({ ...s, faults: [...s.faults, { rule, seen: 0, fired: 0 }] }))
      }),
      clearFaults: Ref.update(state, (s) => ({ ...s, faults: [] })).pipe(Effect.withSpan("FakeZapier.clearFaults")),
      setRateLimit: Effect.fn("FakeZapier.setRateLimit")(function* (perMinute: number | undefined) {
        yield* Ref.update(state, (s) => ({
          ...s,
          rateLimit: { perMinute, window: Chunk.empty(), cooldownUntil: 0 }
        }))
      }),
      ledger: Effect.map(Ref.get(state), (s) => ({
        requests: Chunk.toReadonlyArray(s.ledger.requests),
        exchanges: Chunk.toReadonlyArray(s.ledger.exchanges),
        lookups: Chunk.toReadonlyArray(s.ledger.lookups),
        runs: Chunk.toReadonlyArray(s.ledger.runs),
        polls: Chunk.toReadonlyArray(s.ledger.polls),
        connects: Chunk.toReadonlyArray(s.ledger.connects)
      })).pipe(Effect.withSpan("FakeZapier.ledger")),
      resetLedger: Ref.update(state, (s) => ({ ...s, ledger: emptyLedger })).pipe(
        Effect.withSpan("FakeZapier.resetLedger")
      )
    }

    return {
      settings,
      clock,
      now,
      partner: Effect.map(Ref.get(state), (s) => s.partner),
      useJti,
      exchangeAccess,
      exchangeConnect,
      connectFor,
      authenticate,
      gate,
      record,
      listApps,
      inputFields,
      choices,
      outputFields,
      listConnections,
      lookupActions,
      createRun,
      getRun,
      openSession,
      finishSession,
      control
    } satisfies Model
  })

function provision(s: State, user: Domain.EndUser, at: number): State {
  const key = userKey(user)
  if (HashMap.has(s.users, key)) return s
  return {
    ...s,
    seq: s.seq + 1,
    users: HashMap.set(s.users, key, { user, zapierUserId: `zu_${s.seq + 1}`, provisionedAt: at })
  }
}

function addConnectionTo(
  s: State,
  user: Domain.EndUser,
  app: string,
  options: Omit<FZ.ConnectionSeed, "app">
): readonly [State, ConnectionRecord] | undefined {
  const record = s.apps.find((a) => a.id === app)
  if (record === undefined) return undefined
  let seq = s.seq + 1
  while (options.id === undefined && HashMap.has(s.connections, String(seq))) seq++
  const connection: ConnectionRecord = {
    id: Domain.ConnectionId.make(options.id ?? String(seq)),
    app: record.id,
    userKey: userKey(user),
    user,
    title: options.title ?? `${record.title} ${user.userId}`,
    isExpired: options.isExpired ?? false,
    seq
  }
  return [{ ...s, seq, connections: HashMap.set(s.connections, connection.id, connection) }, connection] as const
}

/** DateTime of epoch millis. */
export const dateTime = (millis: number): DateTime.Utc => DateTime.unsafeMake(millis)
