/**
 * What one `EmbeddedActions` remembers between runs to spend fewer of Zapier's requests: connections verified
 * recently, input fields fetched recently, the runs it started (so `await` knows the action and the connection of
 * a run), and the run durations learned per action. Every cache is per end user and bounded (see `Caching`).
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ActionCatalog } from "../ActionCatalog.js"
import type { Field, Inputs } from "../ActionInputs.js"
import { check, inputFieldsOf } from "../ActionInputs.js"
import type { PolicyShape } from "../Caching.js"
import { Policy as CachingPolicy } from "../Caching.js"
import type { Connections } from "../Connections.js"
import type {
  Action,
  ActionKey,
  ActionRunId,
  ActionType,
  AppId,
  Connection,
  ConnectionId,
  ConnectLink,
  EndUser,
  RunError
} from "../Domain.js"
import { ActionRunFailed } from "../Errors.js"
import type * as Polling from "../Polling.js"
import * as Cache from "./cache.js"
import * as Learned from "./learned.js"

/** A run this program started. @internal */
export interface RecentRun {
  readonly runId: ActionRunId
  readonly app: AppId
  readonly action: ActionKey
  readonly actionType: ActionType
  readonly connection: ConnectionId | null
  /** Epoch millis when the create returned. */
  readonly createdAt: number
}

/** Input fields fetched for one action and connection, and the values they were computed from. @internal */
export interface CachedFields {
  readonly fields: ReadonlyArray<Field>
  readonly variant: string
}

/** @internal */
export interface Memory {
  /** Key: the app. */
  readonly verified: Cache.UserCache<Connection>
  /** Key: {@link fieldsKey}. */
  readonly fields: Cache.UserCache<CachedFields>
  /** Key: the run id. */
  readonly recent: Cache.UserCache<RecentRun>
  readonly learned: Learned.Learned
}

/**
 * Runs remembered per user for `await` until they end (beyond it, `await` still works: it polls on the fixed
 * schedule).
 */
const recentPerUser = 256

/** @internal */
export const make = (policy: PolicyShape): Memory => {
  const bounds = { maxUsers: policy.maxUsers, maxPerUser: policy.maxEntriesPerUser }
  return {
    verified: Cache.make(bounds),
    fields: Cache.make(bounds),
    recent: Cache.make({ maxUsers: policy.maxUsers, maxPerUser: recentPerUser }),
    learned: Learned.make()
  }
}

/** True when an entry written at `at` is still fresh at `now` under `ttl` (a zero ttl: never). @internal */
export const fresh = (at: number, now: number, ttl: Duration.Duration): boolean =>
  Duration.greaterThan(ttl, Duration.zero) && now - at < Duration.toMillis(ttl)

const part = (s: string) => `${s.length}:${s}`

/** @internal */
export const fieldsKey = (app: AppId, action: ActionKey, actionType: ActionType, connection: ConnectionId | null) =>
  `${part(app)}|${part(action)}|${actionType}|${connection === null ? "-" : part(connection)}`

/**
 * The values of the inputs that change the set of fields (`invalidates`): cached fields serve only inputs that
 * agree on them. Actions without such fields have one variant.
 * @internal
 */
export const variantOf = (fields: ReadonlyArray<Field>, inputs: Inputs): string => {
  const ids = inputFieldsOf(fields)
    .filter((f) => f.invalidates)
    .map((f) => f.id)
    .sort()
  return ids.length === 0 ? "" : JSON.stringify(ids.map((id) => [id, inputs[id] ?? null]))
}

/** @internal */
export const learnedKey = (run: Pick<RecentRun, "app" | "action" | "actionType">): string =>
  Learned.keyOf(run.app, run.action, run.actionType)

/**
 * The delays before the first reads of a run this program started, created at `createdAt` and awaited from `now`:
 * with `held` reads (long-poll), one read at once (Zapier holds it until the run ends, so reading early costs
 * nothing); otherwise the polls the learned durations of its action place (empty: the fixed schedule).
 * @internal
 */
export const firstDelays = (
  memory: Memory,
  key: string,
  policy: Pick<Polling.PolicyShape, "initialDelay" | "factor" | "maxDelay">,
  held: boolean,
  createdAt: number,
  now: number
): ReadonlyArray<Duration.Duration> =>
  held
    ? [Duration.zero]
    : plannedDelays(
        memory.learned.plan(key, {
          initialDelay: Duration.toMillis(policy.initialDelay),
          factor: policy.factor,
          maxDelay: Duration.toMillis(policy.maxDelay)
        }),
        createdAt,
        now
      )

/**
 * The delays to the polls the learned durations place, for a run created at `createdAt` and polled from `now`
 * (offsets already passed are dropped; when all have passed, one read at once: the run is older than those the
 * action's runs were seen to end by).
 * @internal
 */
export const plannedDelays = (offsets: ReadonlyArray<number>, createdAt: number, now: number) => {
  const elapsed = now - createdAt
  const ahead = offsets.filter((o) => o > elapsed)
  if (ahead.length === 0 && offsets.length > 0) return [Duration.zero]
  return ahead.map((o, i) => Duration.millis(o - (i === 0 ? elapsed : ahead[i - 1]!)))
}

/** What the pre-run check needs of a run request. @internal */
export interface CheckRequest {
  readonly user: EndUser
  readonly app: AppId
  readonly action: ActionKey
  readonly inputs: Inputs
  readonly validateChoices?: boolean | undefined
}

/**
 * The pre-run input check (`ActionInputs.check`), with the input fields fetched within the caching policy's
 * `fieldsTtl` reused (not when the choices are checked too: those are fetched every time).
 * @internal
 */
export const checkInputs = Effect.fnUntraced(function* (
  catalog: ActionCatalog["Type"],
  memory: Memory,
  request: CheckRequest,
  action: Action,
  connection: ConnectionId | null
) {
  const caching = yield* CachingPolicy
  const key = fieldsKey(request.app, request.action, action.actionType, connection)
  const cachedCatalog = ActionCatalog.of({
    ...catalog,
    inputFields: (user, id, fieldsRequest) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const hit = memory.fields.get(user, key)
        if (
          hit !== undefined &&
          fresh(hit.at, now, caching.fieldsTtl) &&
          hit.value.variant === variantOf(hit.value.fields, request.inputs)
        ) {
          return hit.value.fields
        }
        const fields = yield* catalog.inputFields(user, id, fieldsRequest)
        if (Duration.greaterThan(caching.fieldsTtl, Duration.zero)) {
          memory.fields.set(user, key, { fields, variant: variantOf(fields, request.inputs) }, now)
        }
        return fields
      })
  })
  yield* check(
    request.validateChoices === true ? catalog : cachedCatalog,
    request.user,
    action,
    { connection, inputs: request.inputs },
    { choices: request.validateChoices ?? false }
  )
})

/** The options of the reconnect link minted after an `authentication` failure. @internal */
export interface LinkOptions {
  readonly redirectUri?: string | undefined
  readonly theme?: string | undefined
}

/**
 * The failure of a run. An `authentication` error means the connection may need reconnecting: its cached
 * verification is dropped, and for a run this program started the connection is listed again, so the error says
 * whether it is still valid, and carries a reconnect link when asked for and needed. A failure of that check
 * leaves the error as Zapier reported it.
 * @internal
 */
export const runFailed = Effect.fnUntraced(function* <E>(
  deps: {
    readonly connections: Connections["Type"]
    readonly memory: Memory
    readonly openLink: (
      user: EndUser,
      app: AppId,
      reconnect: Option.Option<ConnectionId>,
      options?: LinkOptions
    ) => Effect.Effect<ConnectLink, E>
  },
  user: EndUser,
  runId: ActionRunId,
  errors: ReadonlyArray<RunError>,
  run: RecentRun | undefined,
  reconnectLink: boolean | LinkOptions | undefined
) {
  const failed = new ActionRunFailed({ runId, errors })
  if (!failed.needsReconnect) return failed
  deps.memory.verified.deleteWhere(user, (c) => run === undefined || c.id === run.connection)
  if (run === undefined || run.connection === null) return failed
  const connection = run.connection
  const checked = yield* Effect.either(
    Effect.gen(function* () {
      const listed = (yield* deps.connections.list(user, run.app)).find((c) => c.id === connection && c.app === run.app)
      const connectionStatus: "missing" | "expired" | "valid" =
        listed === undefined ? "missing" : listed.isExpired ? "expired" : "valid"
      if (listed !== undefined && connectionStatus === "valid") {
        deps.memory.verified.set(user, run.app, listed, yield* Clock.currentTimeMillis)
        return { connectionStatus }
      }
      if (reconnectLink === undefined || reconnectLink === false) return { connectionStatus }
      const options = reconnectLink === true ? undefined : reconnectLink
      const reconnect = connectionStatus === "expired" ? Option.some(connection) : Option.none()
      return { connectionStatus, reconnect: yield* deps.openLink(user, run.app, reconnect, options) }
    })
  )
  return checked._tag === "Left" ? failed : new ActionRunFailed({ runId, errors, ...checked.right })
})
