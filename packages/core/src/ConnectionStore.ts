/**
 * Where the partner keeps each user's connection per app, and the open connect attempts that callbacks must
 * match. `layerMemory` is here; durable stores (SQLite, PostgreSQL) live in their own packages.
 *
 * @example
 * ```ts
 * import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
 * import { Layer } from "effect"
 *
 * const live = EmbeddedActions.layer.pipe(Layer.provide(ConnectionStore.layerMemory))
 * ```
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { AppId, ConnectionId, EndUser } from "./Domain.js"
import { ConnectAttempt, StoredConnection } from "./Domain.js"
import type { StoreUnavailable } from "./Errors.js"

/**
 * An attempt as the store holds it: open until a callback closes it.
 * @since 0.1.0
 */
export interface AttemptRecord {
  readonly attempt: ConnectAttempt
  readonly closed: boolean
}

/**
 * Options of `set`.
 * @since 0.2.0
 */
export interface SetOptions {
  /** The user just (re)authorized the connection through Connect UI: its expiry mark is cleared. */
  readonly renewed?: boolean | undefined
}

/** @since 0.1.0 */
export interface Service {
  /** The stored connection for (tenant, user, app). */
  readonly get: (user: EndUser, app: AppId) => Effect.Effect<Option.Option<StoredConnection>, StoreUnavailable>
  /**
   * Stores (or re-verifies) the connection for (tenant, user, app): last writer wins. `storedAt` is kept when the
   * id does not change; `verifiedAt` is now. An expiry mark (`expiresAt`) is kept when the id does not change,
   * unless `renewed` says the user just re-authorized it through Connect UI; another id has none.
   */
  readonly set: (
    user: EndUser,
    app: AppId,
    connection: ConnectionId,
    options?: SetOptions
  ) => Effect.Effect<StoredConnection, StoreUnavailable>
  /**
   * Marks every stored connection with this id as expiring at `expiresAt` (Zapier's expiry notice, from a
   * connection webhook); returns how many were marked (0: not stored here). No Zapier request.
   */
  readonly markExpiring: (connection: ConnectionId, expiresAt: DateTime.Utc) => Effect.Effect<number, StoreUnavailable>
  readonly remove: (user: EndUser, app: AppId) => Effect.Effect<void, StoreUnavailable>
  /** Records an open connect attempt (one per link; keyed by its `state`). */
  readonly openAttempt: (attempt: ConnectAttempt) => Effect.Effect<void, StoreUnavailable>
  /** The attempt with this `state`, open or closed. */
  readonly findAttempt: (state: string) => Effect.Effect<Option.Option<AttemptRecord>, StoreUnavailable>
  /** The newest attempt of (tenant, user, app), open or closed. */
  readonly latestAttempt: (user: EndUser, app: AppId) => Effect.Effect<Option.Option<AttemptRecord>, StoreUnavailable>
  /** Closes the attempt atomically: `true` for the one caller that closed it, `false` if it was already closed. */
  readonly closeAttempt: (state: string) => Effect.Effect<boolean, StoreUnavailable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ConnectionStore extends Context.Tag("@effect-zapier/core/ConnectionStore")<ConnectionStore, Service>() {}

/** How long closed or expired attempts are kept (to tell a replay from a forgery) before they are pruned. */
const attemptRetention = 24 * 60 * 60 * 1000

const connectionKey = (user: EndUser, app: AppId) => JSON.stringify([user.tenantId, user.userId, app])

/** An attempt and when it may be pruned: `expiresAt` plus the retention, in epoch millis. */
interface Due {
  readonly at: number
  readonly attempt: ConnectAttempt
}

/**
 * An in-memory store: for tests and single-process apps. Everything is lost on restart.
 * @since 0.1.0
 * @category layers
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  // Every method reads and writes these maps within one synchronous step, which no other fiber can interleave, so
  // each write is atomic without a copy of the map: O(1) amortised.
  const connections = new Map<string, StoredConnection>()
  const attempts = new Map<string, AttemptRecord>()
  // The attempts in the order they are due (`at`), with `head` the first still kept: opening an attempt drops the
  // due ones from the front. An attempt is placed by a walk from the back, one step when attempts are opened in
  // the order they expire (one TTL, one clock). An entry whose state was opened again since is skipped.
  const due: Array<Due> = []
  let head = 0
  const prune = (now: number) => {
    for (; head < due.length && due[head]!.at <= now; head++) {
      const { attempt } = due[head]!
      if (attempts.get(attempt.state)?.attempt === attempt) attempts.delete(attempt.state)
    }
    if (head > 0 && head * 2 >= due.length) {
      due.splice(0, head)
      head = 0
    }
  }
  const schedule = (attempt: ConnectAttempt) => {
    const at = DateTime.toEpochMillis(attempt.expiresAt) + attemptRetention
    let i = due.length
    while (i > head && due[i - 1]!.at > at) i--
    if (i === due.length) due.push({ at, attempt })
    else due.splice(i, 0, { at, attempt })
  }

  return ConnectionStore.of({
    get: (user, app) => Effect.sync(() => Option.fromNullable(connections.get(connectionKey(user, app)))),
    set: (user, app, connection, options) =>
      Effect.flatMap(DateTime.now, (now) =>
        Effect.sync(() => {
          const key = connectionKey(user, app)
          const previous = connections.get(key)
          const same = previous !== undefined && previous.connectionId === connection
          const expiresAt = same && options?.renewed !== true ? previous.expiresAt : undefined
          const stored = StoredConnection.make({
            connectionId: connection,
            storedAt: same ? previous.storedAt : now,
            verifiedAt: now,
            ...(expiresAt !== undefined ? { expiresAt } : {})
          })
          connections.set(key, stored)
          return stored
        })
      ),
    markExpiring: (connection, expiresAt) =>
      Effect.sync(() => {
        let marked = 0
        for (const [key, stored] of connections) {
          if (stored.connectionId !== connection) continue
          connections.set(key, StoredConnection.make({ ...stored, expiresAt }))
          marked++
        }
        return marked
      }),
    remove: (user, app) =>
      Effect.sync(() => {
        connections.delete(connectionKey(user, app))
      }),
    openAttempt: (attempt) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          prune(now)
          attempts.set(attempt.state, { attempt, closed: false })
          schedule(attempt)
        })
      ),
    findAttempt: (key) => Effect.sync(() => Option.fromNullable(attempts.get(key))),
    latestAttempt: (user, app) =>
      Effect.sync(() => {
        let latest: AttemptRecord | undefined
        for (const record of attempts.values()) {
          const a = record.attempt
          if (a.app !== app || a.user.userId !== user.userId || a.user.tenantId !== user.tenantId) continue
          if (!latest || DateTime.greaterThanOrEqualTo(a.openedAt, latest.attempt.openedAt)) latest = record
        }
        return Option.fromNullable(latest)
      }),
    closeAttempt: (key) =>
      Effect.sync(() => {
        const record = attempts.get(key)
        if (!record || record.closed) return false
        attempts.set(key, { ...record, closed: true })
        return true
      })
  })
})

/**
 * The in-memory `ConnectionStore` layer (fresh state per build).
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ConnectionStore> = Layer.effect(ConnectionStore, makeMemory)

export {
  /**
   * `Domain.ConnectAttempt`, re-exported so stores in other packages build the same records.
   * @since 0.1.0
   */
  ConnectAttempt,
  /**
   * `Domain.StoredConnection`, re-exported so stores in other packages build the same records.
   * @since 0.1.0
   */
  StoredConnection
}
