/**
 * The state of the fake Zapier, shared by every area: one `Ref` of persistent data (HashMap, Chunk), the settings
 * drawn from the seed, and the `Clock` captured when the model is made. Areas read and update it through the
 * {@link Kit}; the helpers here are the ones more than one area uses.
 *
 * @internal
 */
import { Domain, Errors } from "@effect-zapier/core"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import type * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Ref from "effect/Ref"
import { decodeSeed, InvalidSeed } from "../seedSchema.js"
import type * as FZ from "../types.js"

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

export interface IssuedActionRecord {
  readonly userKey: string
  readonly action: IssuedAction
  /** The order it was issued in (for the retention: the oldest go first). */
  readonly seq: number
}

export interface RunErrorView {
  readonly code: string
  readonly title: string
  readonly detail: string | undefined
  readonly delaySeconds: number | undefined
}

export type Outcome =
  | { readonly _tag: "Succeed"; readonly at: number; readonly results: ReadonlyArray<unknown> }
  | { readonly _tag: "Fail"; readonly at: number; readonly errors: ReadonlyArray<RunErrorView> }
  | { readonly _tag: "Pending" }

export interface RunRecord {
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

/**
 * A gate of `holdRuns`, while it is closed: the runs of `app`'s `action` created meanwhile are held. `read` is
 * completed by the first read of a run it holds, `released` when it opens. Gates are told apart by identity.
 */
export interface GateRecord {
  readonly app: Domain.AppId
  readonly action: Domain.ActionKey
  readonly read: Deferred.Deferred<Domain.ActionRunId>
  readonly released: Deferred.Deferred<void>
}

/**
 * A run held by gates (its record reads `Pending` meanwhile): the gates still closed, the outcome its script gave it
 * (applied when the last gate opens, no earlier than its own end), and its callback URL (posted then).
 */
export interface HeldRun {
  readonly gates: ReadonlyArray<GateRecord>
  readonly outcome: Outcome
  readonly callbackUrl: string | undefined
}

export interface RunView {
  readonly id: Domain.ActionRunId
  readonly status: FZ.RunStatus
  readonly results: ReadonlyArray<unknown>
  readonly errors: ReadonlyArray<RunErrorView>
}

export interface AccessTokenRecord {
  readonly user: Domain.EndUser
  readonly expiresAt: number
  readonly scope: string
  readonly revoked: boolean
}

export interface ConnectTokenRecord {
  readonly user: Domain.EndUser
  readonly app: string
  readonly resource: string
  readonly expiresAt: number
  readonly used: boolean
}

export interface SessionRecord {
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

export interface RuleState {
  readonly rule: FZ.FaultRule
  readonly seen: number
  readonly fired: number
}

export interface LedgerState {
  readonly requests: Chunk.Chunk<FZ.RequestEntry>
  readonly exchanges: Chunk.Chunk<FZ.ExchangeEntry>
  readonly lookups: Chunk.Chunk<FZ.LookupEntry>
  readonly runs: Chunk.Chunk<FZ.RunEntry>
  readonly polls: Chunk.Chunk<FZ.PollEntry>
  readonly connects: Chunk.Chunk<FZ.ConnectEntry>
  readonly callbacks: Chunk.Chunk<FZ.CallbackEntry>
}

/** One rate-limit bucket: its limit per window, the requests inside the window, and a 429's cooldown. */
export interface Bucket {
  readonly perMinute: number | undefined
  readonly window: Chunk.Chunk<number>
  readonly cooldownUntil: number
}

export interface State {
  readonly partner: Partner
  readonly users: HashMap.HashMap<string, UserRecord>
  readonly apps: ReadonlyArray<AppRecord>
  readonly connections: HashMap.HashMap<string, ConnectionRecord>
  readonly actionIds: HashMap.HashMap<string, IssuedActionRecord>
  readonly runs: HashMap.HashMap<string, RunRecord>
  readonly accessTokens: HashMap.HashMap<string, AccessTokenRecord>
  readonly connectTokens: HashMap.HashMap<string, ConnectTokenRecord>
  readonly sessions: HashMap.HashMap<string, SessionRecord>
  readonly scripts: HashMap.HashMap<string, ReadonlyArray<FZ.RunScript>>
  /** The closed gates of `holdRuns`, and the runs they hold (by run id). */
  readonly runGates: ReadonlyArray<GateRecord>
  readonly heldRuns: HashMap.HashMap<string, HeldRun>
  readonly faults: ReadonlyArray<RuleState>
  /** The `/v2` per-minute limit (with the Trigger Inbox and connection webhooks). */
  readonly rateLimit: Bucket
  /** The long-poll reads' own limit (Zapier's `actions_api_results` bucket). */
  readonly resultsRateLimit: Bucket
  readonly seq: number
  /** Action ids issued so far (their order, apart from `seq` so ids and numbering elsewhere stay as they were). */
  readonly issued: number
  /** How many runs may be held before the next prune (the retention's bound, or more when most runs have not ended). */
  readonly runsPruneAt: number
  readonly ledger: LedgerState
}

// ---------------------------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------------------------

export const base64url = (bytes: Uint8Array): string => {
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

export const randomUuid: Effect.Effect<string> = Effect.sync(() => globalThis.crypto.randomUUID())

export const userKey = (user: Domain.EndUser): string => JSON.stringify([user.tenantId, user.userId])

export const sameUser = (a: Domain.EndUser, b: Domain.EndUser) => a.userId === b.userId && a.tenantId === b.tenantId

export const toConnection = (c: ConnectionRecord): Domain.Connection =>
  Domain.Connection.make({ id: c.id, app: c.app, title: c.title, isExpired: c.isExpired })

export const scriptKey = (app: string, key: string) => JSON.stringify([app, key])

export const seconds = (d: Duration.DurationInput): number => Math.ceil(Duration.toMillis(Duration.decode(d)) / 1000)

export const toAppRecord = (app: FZ.AppSeed): AppRecord => ({
  id: Domain.AppId.make(app.id),
  title: app.title,
  service: app.service,
  description: app.description,
  categories: app.categories ?? [],
  requiresAuth: app.requiresAuth ?? true,
  actions: app.actions.map(toActionRecord)
})

export const toActionRecord = (action: FZ.ActionSeed): ActionRecord => ({
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

export const appendLedger = <K extends keyof LedgerState>(
  s: State,
  key: K,
  entry: LedgerState[K] extends Chunk.Chunk<infer E> ? E : never
): State => ({
  ...s,
  ledger: { ...s.ledger, [key]: Chunk.append(s.ledger[key] as Chunk.Chunk<typeof entry>, entry) }
})

export const emptyLedger: LedgerState = {
  requests: Chunk.empty(),
  exchanges: Chunk.empty(),
  lookups: Chunk.empty(),
  runs: Chunk.empty(),
  polls: Chunk.empty(),
  connects: Chunk.empty(),
  callbacks: Chunk.empty()
}

/** The connect URL for an app, as a connect token's `resource` must name it. */
export const connectResource = (connectUrl: string, app: string) =>
  `${connectUrl.replace(/\/+$/, "")}/to/${encodeURIComponent(app)}`

export interface Settings {
  readonly connectUrl: string
  readonly choicesPageSize: number
  readonly accessTokenTtlSeconds: number
  readonly connectTokenTtlMillis: number
  readonly scope: string
  /** The rate limit's window and cooldown. */
  readonly rateLimitWindowMillis: number
  /** Run callbacks: who may be called, what is signed, how deliveries are retried. */
  readonly callbacks: {
    readonly allowLoopback: boolean
    readonly claims: "minimal" | "bound"
    readonly attempts: number
    readonly retryDelay: Duration.Duration
    readonly timeout: Duration.Duration
  }
  /** What is kept of the finished runs and the issued action ids (see `Seed.retention`). */
  readonly retention: {
    readonly runTtlMillis: number
    readonly maxRuns: number
    readonly maxActionIds: number
  }
}

export const connectionsOf = (s: State, key: string, app?: string): ReadonlyArray<ConnectionRecord> =>
  Array.from(HashMap.values(s.connections))
    .filter((c) => c.userKey === key && (app === undefined || c.app === app))
    .sort((a, b) => a.seq - b.seq)
export const misuse = (method: string, resource: string) =>
  new Errors.NotFound({ endpoint: `FakeZapier.${method}`, resource })

export function provision(s: State, user: Domain.EndUser, at: number): State {
  const key = userKey(user)
  if (HashMap.has(s.users, key)) return s
  return {
    ...s,
    seq: s.seq + 1,
    users: HashMap.set(s.users, key, { user, zapierUserId: `zu_${s.seq + 1}`, provisionedAt: at })
  }
}

export function addConnectionTo(
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

// ---------------------------------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------------------------------

/** True while the model keeps `run` at `now`: pending, or ended less than the retention's `runTtl` ago. */
export const retained = (run: RunRecord, now: number, settings: Settings): boolean =>
  run.outcome._tag === "Pending" || now < run.outcome.at + settings.retention.runTtlMillis

/**
 * How far past its bound a collection grows before it is pruned back to the bound: pruning sorts what is kept, so it
 * runs once per this many additions, not on every one.
 */
const slack = (bound: number) => Math.max(1, Math.ceil(bound / 10))

/** True once `run` has ended (its status is no longer `waiting`). */
const ended = (run: RunRecord, now: number): boolean => run.outcome._tag !== "Pending" && now >= run.outcome.at

/**
 * The runs the retention keeps, once more than `maxRuns` (+ a tenth) are held: every run not ended yet, and of the
 * ended ones still within `runTtl` the `maxRuns` created last. When runs not ended yet keep the count above the
 * bound, the next prune waits for another tenth more.
 */
export const pruneRuns = (s: State, now: number, settings: Settings): State => {
  const { maxRuns } = settings.retention
  if (HashMap.size(s.runs) <= s.runsPruneAt) return s
  const finished = Array.from(HashMap.values(s.runs))
    .filter((r) => ended(r, now) && retained(r, now, settings))
    .sort((a, b) => b.seq - a.seq)
  const keep = new Set(finished.slice(0, maxRuns).map((r) => r.id))
  const runs = HashMap.filter(s.runs, (r) => !ended(r, now) || keep.has(r.id))
  return { ...s, runs, runsPruneAt: Math.max(maxRuns, HashMap.size(runs)) + slack(maxRuns) }
}

/** The issued action ids the retention keeps, once more than `maxActionIds` (+ a tenth) are held: the newest. */
export const pruneActionIds = (s: State, settings: Settings): State => {
  const { maxActionIds } = settings.retention
  if (HashMap.size(s.actionIds) <= maxActionIds + slack(maxActionIds)) return s
  const oldestKept = s.issued - maxActionIds
  return { ...s, actionIds: HashMap.filter(s.actionIds, (r) => r.seq >= oldestKept) }
}

/** DateTime of epoch millis. */
export const dateTime = (millis: number): DateTime.Utc => DateTime.unsafeMake(millis)

/** What every area builds on: the settings, the clock, and the state. */
export interface Kit {
  readonly settings: Settings
  readonly clock: Clock.Clock
  readonly now: Effect.Effect<number>
  readonly state: Ref.Ref<State>
}

/**
 * The state a seed describes, on the `Clock` in scope. The seed's settings are decoded first: a count or a duration
 * the model cannot use fails with `InvalidSeed`, naming the field.
 */
export const makeKit = (
  seed: FZ.Seed,
  overrides?: { readonly connectUrl?: string | undefined }
): Effect.Effect<Kit, InvalidSeed> =>
  Effect.gen(function* () {
    const decoded = yield* decodeSeed(seed)
    const clock = yield* Effect.clock
    const now = clock.currentTimeMillis
    const settings: Settings = {
      connectUrl: (overrides?.connectUrl ?? decoded.connectUrl ?? "https://connect.zapier.com").replace(/\/+$/, ""),
      choicesPageSize: decoded.choicesPageSize ?? 10,
      accessTokenTtlSeconds: seconds(decoded.accessTokenTtl ?? Duration.hours(1)),
      connectTokenTtlMillis: Duration.toMillis(decoded.connectTokenTtl ?? Duration.minutes(6)),
      scope: decoded.scope ?? "external action:run connection:read authentication zap zap:write",
      rateLimitWindowMillis: Duration.toMillis(decoded.rateLimitWindow ?? Duration.minutes(1)),
      callbacks: {
        allowLoopback: seed.callbacks?.allowLoopback ?? false,
        claims: seed.callbacks?.claims ?? "minimal",
        attempts: decoded.callbacks?.attempts ?? 3,
        retryDelay: decoded.callbacks?.retryDelay ?? Duration.millis(200),
        timeout: decoded.callbacks?.timeout ?? Duration.seconds(5)
      },
      retention: {
        runTtlMillis: Duration.toMillis(decoded.retention?.runTtl ?? Duration.days(7)),
        maxRuns: decoded.retention?.maxRuns ?? 10_000,
        maxActionIds: decoded.retention?.maxActionIds ?? 10_000
      }
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
      scripts: HashMap.empty(),
      runGates: [],
      heldRuns: HashMap.empty(),
      faults: (seed.faults ?? []).map((rule) => ({ rule, seen: 0, fired: 0 })),
      rateLimit: { perMinute: decoded.rateLimitPerMinute, window: Chunk.empty(), cooldownUntil: 0 },
      resultsRateLimit: {
        perMinute: decoded.resultsRateLimitPerMinute ?? decoded.rateLimitPerMinute,
        window: Chunk.empty(),
        cooldownUntil: 0
      },
      seq: 10000,
      issued: 0,
      runsPruneAt: settings.retention.maxRuns + slack(settings.retention.maxRuns),
      ledger: emptyLedger
    }
    for (const [i, u] of (seed.users ?? []).entries()) {
      const user = Domain.EndUser.make(u.user)
      initial = provision(initial, user, start)
      for (const [j, c] of (u.connections ?? []).entries()) {
        const added = addConnectionTo(initial, user, c.app, c)
        if (added === undefined) {
          return yield* new InvalidSeed({
            field: `users.${i}.connections.${j}.app`,
            value: JSON.stringify(c.app),
            allowed: "the id of an app in seed.apps"
          })
        }
        initial = added[0]
      }
    }
    const state = yield* Ref.make(initial)
    return { settings, clock, now, state }
  })
