/**
 * Core's `ConnectionStore` on any `@effect/sql` client of a supported dialect (SQLite or PostgreSQL), with the
 * same semantics as `ConnectionStore.layerMemory`. Most apps use {@link SqliteStore} or {@link PgStore}, which
 * bring their own client; this module is for apps that already have a `SqlClient` and want the store's tables in
 * the same database.
 *
 * - Tables are created by @effect/sql's Migrator when the store is built, all named with a prefix
 *   (`effect_zapier_` by default): `<prefix>connections`, `<prefix>connect_attempts`, `<prefix>migrations`.
 * - `set` is one upsert (last writer wins; `storedAt` and an expiry mark are kept when the id is unchanged) and
 *   `closeAttempt` one conditional update, so two backends can never both complete one connect attempt.
 *   `markExpiring` is one update of every row with that connection id.
 * - Migration 2 adds the connections' `expires_at` column (nullable) to a database made by an earlier version.
 * - Every database failure is a `StoreUnavailable` that names the operation and a reason (an error code and what to
 *   do), never a connection string, a password or a stored value. Rows are decoded with Schema.
 *
 * @example
 * ```ts
 * import { SqlStore } from "@effect-zapier/sql"
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 *
 * // the app's own client, shared with its other tables
 * const store = SqlStore.layer({ tablePrefix: "zapier_" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
 * )
 * ```
 * @since 0.1.0
 */

import * as SqlClient from "@effect/sql/SqlClient"
import type { AttemptRecord, Service, SetOptions } from "@effect-zapier/core/ConnectionStore"
import { ConnectAttempt, ConnectionStore, StoredConnection } from "@effect-zapier/core/ConnectionStore"
import type { AppId, ConnectionId, EndUser as EndUserType } from "@effect-zapier/core/Domain"
import { AppId as AppIdSchema, ConnectionId as ConnectionIdSchema, EndUser } from "@effect-zapier/core/Domain"
import { StoreUnavailable } from "@effect-zapier/core/Errors"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { fromDefect, fromSqlError, fromStoreError } from "./internal/errors.js"
import type { Dialect } from "./internal/migrations.js"
import { migrate, tables } from "./internal/migrations.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Prefix of every table the store creates, so they can live in a database shared with other tables. Lowercase
   * letters, digits and `_`, starting with a letter or `_`, at most 40 characters. Default `effect_zapier_`.
   */
  readonly tablePrefix?: string | undefined
}

/**
 * The default table prefix.
 * @since 0.1.0
 */
export const defaultTablePrefix = "effect_zapier_"

/**
 * How long closed or expired attempts are kept (to tell a replay from a forgery) before they are pruned: 24 hours
 * after they expire, as in `ConnectionStore.layerMemory`.
 * @since 0.1.0
 */
export const attemptRetentionMillis = 24 * 60 * 60 * 1000

const prefixRule =
  "tablePrefix must be lowercase letters, digits and _, start with a letter or _, and be at most 40 characters"
const TablePrefix = Schema.String.pipe(Schema.pattern(/^[a-z_][a-z0-9_]{0,39}$/))

/** A time column: epoch milliseconds (SQLite), a `Date` (node-postgres) or an ISO string (other pg type parsers). */
const Timestamp = Schema.Union(Schema.DateTimeUtcFromNumber, Schema.DateTimeUtcFromDate, Schema.DateTimeUtc)

const ConnectionRow = Schema.Struct({
  connection_id: ConnectionIdSchema,
  stored_at: Timestamp,
  verified_at: Timestamp,
  expires_at: Schema.NullOr(Timestamp)
})

const AttemptRow = Schema.Struct({
  state: Schema.String,
  tenant_id: Schema.NonEmptyTrimmedString,
  user_id: Schema.NonEmptyTrimmedString,
  app_id: AppIdSchema,
  reconnect_id: Schema.NullOr(ConnectionIdSchema),
  opened_at: Timestamp,
  expires_at: Timestamp,
  closed_at: Schema.NullOr(Timestamp)
})

// `errors: "all"` so a StoreUnavailable can name every bad column at once.
const decodeConnections = Schema.decodeUnknown(Schema.Array(ConnectionRow), { errors: "all" })
const decodeAttempts = Schema.decodeUnknown(Schema.Array(AttemptRow), { errors: "all" })

const toStoredConnection = (row: typeof ConnectionRow.Type): StoredConnection =>
  StoredConnection.make({
    connectionId: row.connection_id,
    storedAt: row.stored_at,
    verifiedAt: row.verified_at,
    ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {})
  })

const toAttemptRecord = (row: typeof AttemptRow.Type): AttemptRecord => ({
  attempt: ConnectAttempt.make({
    user: EndUser.make({ userId: row.user_id, tenantId: row.tenant_id }),
    app: row.app_id,
    state: row.state,
    ...(row.reconnect_id !== null ? { reconnect: row.reconnect_id } : {}),
    openedAt: row.opened_at,
    expiresAt: row.expires_at
  }),
  closed: row.closed_at !== null
})

/**
 * Builds the store on the `SqlClient` in context: checks the dialect, runs the migrations, and returns core's
 * `ConnectionStore.Service`. Fails with `StoreUnavailable` when the client is not SQLite or PostgreSQL, the prefix is
 * invalid, or the migrations cannot run.
 *
 * @example
 * ```ts
 * import { Domain } from "@effect-zapier/core"
 * import { SqlStore } from "@effect-zapier/sql"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* SqlStore.make({ tablePrefix: "zapier_" }) // needs a SqlClient
 *   yield* store.set(user, Domain.AppId.make("slack"), Domain.ConnectionId.make("10002"))
 * })
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<Service, StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    // Our own column names, whatever name transforms the app configured on its client.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = sql.onDialectOrElse<Dialect | undefined, Dialect, Dialect>({
      sqlite: () => "sqlite",
      pg: () => "pg",
      orElse: () => undefined
    })
    if (dialect === undefined) {
      return yield* new StoreUnavailable({
        operation: "configure",
        reason: "this SqlClient's dialect is not supported; use a SQLite or PostgreSQL client"
      })
    }
    const prefix = yield* Schema.decodeUnknown(TablePrefix)(options?.tablePrefix ?? defaultTablePrefix).pipe(
      Effect.mapError(
        () =>
          new StoreUnavailable({
            operation: "configure",
            reason: prefixRule
          })
      )
    )
    const t = tables(prefix)
    yield* migrate(t, dialect).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.catchTags({
        SqlError: (e) => Effect.fail(fromSqlError("migrate", e)),
        MigrationError: (e) =>
          Effect.fail(fromDefect("migrate", `the store's migrations could not run (${e.reason})`)(e.cause))
      }),
      // The Migrator turns a failing migration into a defect; it is still a store that cannot start.
      Effect.catchAllDefect((defect) =>
        Effect.fail(
          fromDefect(
            "migrate",
            "a migration of the store's tables failed",
            `check that no other table's name starts with the prefix "${prefix}" and that the user may create tables`
          )(defect)
        )
      )
    )

    const connections = sql(t.connections)
    const attempts = sql(t.attempts)
    const seq = sql.literal(dialect === "pg" ? "seq" : "rowid")
    const toDb: (d: DateTime.Utc) => Date | number = dialect === "pg" ? DateTime.toDateUtc : DateTime.toEpochMillis
    const attemptColumns = sql.literal(
      "state, tenant_id, user_id, app_id, reconnect_id, opened_at, expires_at, closed_at"
    )

    const get = Effect.fn("SqlStore.get")(function* (user: EndUserType, app: AppId) {
      const rows = yield* sql`SELECT connection_id, stored_at, verified_at, expires_at FROM ${connections}
WHERE tenant_id = ${user.tenantId} AND user_id = ${user.userId} AND app_id = ${app}`.pipe(
        Effect.flatMap(decodeConnections),
        Effect.mapError(fromStoreError("get", t.connections))
      )
      return Option.map(Option.fromNullable(rows[0]), toStoredConnection)
    })

    const set = Effect.fn("SqlStore.set")(function* (
      user: EndUserType,
      app: AppId,
      connection: ConnectionId,
      options?: SetOptions
    ) {
      const now = toDb(yield* DateTime.now)
      // The expiry mark stays with the same id, unless the user just re-authorized it (`renewed`).
      const keepMark = options?.renewed === true ? sql.literal("FALSE") : sql.literal("TRUE")
      const rows = yield* sql`INSERT INTO ${connections} AS c
  (tenant_id, user_id, app_id, connection_id, stored_at, verified_at, expires_at)
VALUES (${user.tenantId}, ${user.userId}, ${app}, ${connection}, ${now}, ${now}, NULL)
ON CONFLICT (tenant_id, user_id, app_id) DO UPDATE SET
  connection_id = excluded.connection_id,
  stored_at = CASE WHEN c.connection_id = excluded.connection_id THEN c.stored_at ELSE excluded.stored_at END,
  verified_at = excluded.verified_at,
  expires_at = CASE WHEN c.connection_id = excluded.connection_id AND ${keepMark} THEN c.expires_at ELSE NULL END
RETURNING connection_id, stored_at, verified_at, expires_at`.pipe(
        Effect.flatMap(decodeConnections),
        Effect.mapError(fromStoreError("set", t.connections))
      )
      const row = rows[0]
      if (row === undefined) {
        return yield* new StoreUnavailable({ operation: "set", reason: "the upsert returned no row" })
      }
      return toStoredConnection(row)
    })

    const markExpiring = Effect.fn("SqlStore.markExpiring")(function* (
      connection: ConnectionId,
      expiresAt: DateTime.Utc
    ) {
      const rows = yield* sql`UPDATE ${connections} SET expires_at = ${toDb(expiresAt)}
WHERE connection_id = ${connection}
RETURNING connection_id`.pipe(Effect.mapError((e) => fromSqlError("markExpiring", e)))
      return rows.length
    })

    const remove = Effect.fn("SqlStore.remove")(function* (user: EndUserType, app: AppId) {
      yield* sql`DELETE FROM ${connections}
WHERE tenant_id = ${user.tenantId} AND user_id = ${user.userId} AND app_id = ${app}`.pipe(
        Effect.mapError((e) => fromSqlError("remove", e))
      )
    })

    const openAttempt = Effect.fn("SqlStore.openAttempt")(function* (attempt: ConnectAttempt) {
      const now = yield* DateTime.now
      const cutoff = toDb(DateTime.subtract(now, { millis: attemptRetentionMillis }))
      const a = attempt
      yield* sql`DELETE FROM ${attempts} WHERE expires_at <= ${cutoff}`.pipe(
        Effect.zipRight(sql`INSERT INTO ${attempts} (${attemptColumns})
VALUES (${a.state}, ${a.user.tenantId}, ${a.user.userId}, ${a.app}, ${a.reconnect ?? null},
  ${toDb(a.openedAt)}, ${toDb(a.expiresAt)}, NULL)
ON CONFLICT (state) DO UPDATE SET
  tenant_id = excluded.tenant_id,
  user_id = excluded.user_id,
  app_id = excluded.app_id,
  reconnect_id = excluded.reconnect_id,
  opened_at = excluded.opened_at,
  expires_at = excluded.expires_at,
  closed_at = NULL`),
        Effect.mapError((e) => fromSqlError("openAttempt", e))
      )
    })

    const findAttempt = Effect.fn("SqlStore.findAttempt")(function* (state: string) {
      const rows = yield* sql`SELECT ${attemptColumns} FROM ${attempts} WHERE state = ${state}`.pipe(
        Effect.flatMap(decodeAttempts),
        Effect.mapError(fromStoreError("findAttempt", t.attempts))
      )
      return Option.map(Option.fromNullable(rows[0]), toAttemptRecord)
    })

    const latestAttempt = Effect.fn("SqlStore.latestAttempt")(function* (user: EndUserType, app: AppId) {
      const rows = yield* sql`SELECT ${attemptColumns} FROM ${attempts}
WHERE tenant_id = ${user.tenantId} AND user_id = ${user.userId} AND app_id = ${app}
ORDER BY opened_at DESC, ${seq} DESC
LIMIT 1`.pipe(Effect.flatMap(decodeAttempts), Effect.mapError(fromStoreError("latestAttempt", t.attempts)))
      return Option.map(Option.fromNullable(rows[0]), toAttemptRecord)
    })

    const closeAttempt = Effect.fn("SqlStore.closeAttempt")(function* (state: string) {
      const now = toDb(yield* DateTime.now)
      // One conditional update: of two callers (or two backends), only one can see `closed_at IS NULL`.
      const rows = yield* sql`UPDATE ${attempts} SET closed_at = ${now}
WHERE state = ${state} AND closed_at IS NULL
RETURNING state`.pipe(Effect.mapError((e) => fromSqlError("closeAttempt", e)))
      return rows.length > 0
    })

    return ConnectionStore.of({
      get,
      set,
      markExpiring,
      remove,
      openAttempt,
      findAttempt,
      latestAttempt,
      closeAttempt
    })
  })

/**
 * The store as a layer over the app's `SqlClient` (migrations run when the layer is built).
 *
 * @example
 * ```ts
 * import { SqlStore } from "@effect-zapier/sql"
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Layer } from "effect"
 *
 * const store = SqlStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: "app.db" })))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<ConnectionStore, StoreUnavailable, SqlClient.SqlClient> =>
  Layer.effect(ConnectionStore, make(options))
