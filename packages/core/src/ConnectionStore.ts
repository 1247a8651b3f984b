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
import * as Ref from "effect/Ref"
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

interface MemoryState {
  readonly connections: ReadonlyMap<string, StoredConnection>
  readonly attempts: ReadonlyMap<string, AttemptRecord>
}

/**
 * An in-memory store: for tests and single-process apps. Everything is lost on restart.
 * @since 0.1.0
 * @category layers
 */
export const makeMemory: Effect.Effect<Service> = Effect.gen(function* () {
  const state = yield* Ref.make<MemoryState>({ connections: new Map(), attempts: new Map() })
  const prune = (attempts: ReadonlyMap<string, AttemptRecord>, now: number) =>
    new Map([...attempts].filter(([, r]) => DateTime.toEpochMillis(r.attempt.expiresAt) + attemptRetention > now))

  return ConnectionStore.of({
    get: (user, app) =>
      Ref.get(state).pipe(Effect.map((s) => Option.fromNullable(s.connections.get(connectionKey(user, app))))),
    set: (user, app, connection, options) =>
      Effect.flatMap(DateTime.now, (now) =>
        Ref.modify(state, (s) => {
          const key = connectionKey(user, app)
          const previous = s.connections.get(key)
          const same = previous !== undefined && previous.connectionId === connection
          const expiresAt = same && options?.renewed !== true ? previous.expiresAt : undefined
          const stored = StoredConnection.make({
            connectionId: connection,
            storedAt: same ? previous.storedAt : now,
            verifiedAt: now,
            ...(expiresAt !== undefined ? { expiresAt } : {})
          })
          return [stored, { ...s, connections: new Map(s.connections).set(key, stored) }]
        })
      ),
    markExpiring: (connection, expiresAt) =>
      Ref.modify(state, (s) => {
        let marked = 0
        const connections = new Map(s.connections)
        for (const [key, stored] of s.connections) {
          if (stored.connectionId !== connection) continue
          connections.set(key, StoredConnection.make({ ...stored, expiresAt }))
          marked++
        }
        return [marked, { ...s, connections }]
      }),
    remove: (user, app) =>
      Ref.update(state, (s) => {
        const connections = new Map(s.connections)
        connections.delete(connectionKey(user, app))
        return { ...s, connections }
      }),
    openAttempt: (attempt) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(state, (s) => ({
          ...s,
          attempts: prune(s.attempts, now).set(attempt.state, { attempt, closed: false })
        }))
      ),
    findAttempt: (key) => Ref.get(state).pipe(Effect.map((s) => Option.fromNullable(s.attempts.get(key)))),
    latestAttempt: (user, app) =>
      Ref.get(state).pipe(
        Effect.map((s) => {
          let latest: AttemptRecord | undefined
          for (const record of s.attempts.values()) {
            const a = record.attempt
            if (a.app !== app || a.user.userId !== user.userId || a.user.tenantId !== user.tenantId) continue
            if (!latest || DateTime.greaterThanOrEqualTo(a.openedAt, latest.attempt.openedAt)) latest = record
          }
          return Option.fromNullable(latest)
        })
      ),
    closeAttempt: (key) =>
      Ref.modify(state, (s) => {
        const record = s.attempts.get(key)
        if (!record || record.closed) return [false, s]
        return [true, { ...s, attempts: new Map(s.attempts).set(key, { ...record, closed: true }) }]
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
