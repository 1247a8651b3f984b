/**
 * The partner's own record of its users' trigger watches and of the events they received (two tables in its
 * SQLite database). A watch is one user's inbox for one trigger; an event is one message the consumer handled.
 * Events are recorded once per message id (`INSERT OR IGNORE`), so a message Zapier delivers again (at least
 * once: a lost ack, a lease that lapsed) shows once on the page.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Domain, Errors } from "@effect-zapier/core"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { encodeResults, unavailable } from "./RunStore.js"

/** A watch as stored. `state`: `consuming` (a consumer runs, and is started again with the app) or `stopped`. */
export class WatchRecord extends Schema.Class<WatchRecord>("partner-app/WatchRecord")({
  key: Domain.InboxKey,
  user: Domain.EndUser,
  app: Domain.AppId,
  trigger: Domain.ActionKey,
  inbox: Domain.InboxId,
  state: Schema.Literal("consuming", "stopped"),
  problem: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String })),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
}) {}

/** One handled event: its payload as JSON, or why the payload was not stored (too deep, too large). */
export class EventRecord extends Schema.Class<EventRecord>("partner-app/EventRecord")({
  messageId: Domain.MessageId,
  receivedAt: Schema.Number,
  payload: Schema.optional(Schema.Unknown),
  problem: Schema.optional(Schema.String)
}) {}

export interface Service {
  /** Records the watch (a new one, or the same key watched again: consuming, its problem cleared). */
  readonly upsert: (record: WatchRecord) => Effect.Effect<void, Errors.StoreUnavailable>
  /** Marks the watch stopped, with what stopped it. */
  readonly stopped: (
    key: Domain.InboxKey,
    problem: { readonly tag: string; readonly message: string } | undefined
  ) => Effect.Effect<void, Errors.StoreUnavailable>
  /** The user's watches, newest first. */
  readonly watches: (user: Domain.EndUser) => Effect.Effect<ReadonlyArray<WatchRecord>, Errors.StoreUnavailable>
  /** Every watch whose consumer should run (started again when the app starts). */
  readonly consuming: Effect.Effect<ReadonlyArray<WatchRecord>, Errors.StoreUnavailable>
  /** Records an event once per message id; true when it was new. */
  readonly record: (
    key: Domain.InboxKey,
    message: Domain.MessageId,
    payload: unknown
  ) => Effect.Effect<boolean, Errors.StoreUnavailable>
  /** The watch's latest `limit` events (newest first) and how many it has. */
  readonly events: (
    key: Domain.InboxKey,
    limit: number
  ) => Effect.Effect<{ readonly total: number; readonly latest: ReadonlyArray<EventRecord> }, Errors.StoreUnavailable>
}

export class TriggerStore extends Context.Tag("partner-app/TriggerStore")<TriggerStore, Service>() {}

const WatchRow = Schema.Struct({
  inbox_key: Schema.String,
  tenant_id: Schema.String,
  user_id: Schema.String,
  app: Schema.String,
  trigger_key: Schema.String,
  inbox_id: Schema.String,
  state: Schema.String,
  problem_tag: Schema.NullOr(Schema.String),
  problem_message: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number
})

const EventRow = Schema.Struct({
  message_id: Schema.String,
  received_at: Schema.Number,
  payload: Schema.NullOr(Schema.parseJson()),
  problem: Schema.NullOr(Schema.String)
})

const invalid = (operation: string) => (e: { readonly message: string }) =>
  new Errors.StoreUnavailable({ operation, reason: `a stored row is invalid: ${e.message.slice(0, 300)}` })

const decodeWatch = (row: unknown) =>
  Effect.flatMap(Schema.decodeUnknown(WatchRow)(row), (r) =>
    Schema.decodeUnknown(WatchRecord)({
      key: r.inbox_key,
      user: { userId: r.user_id, tenantId: r.tenant_id },
      app: r.app,
      trigger: r.trigger_key,
      inbox: r.inbox_id,
      state: r.state,
      ...(r.problem_tag !== null ? { problem: { tag: r.problem_tag, message: r.problem_message ?? "" } } : {}),
      createdAt: r.created_at,
      updatedAt: r.updated_at
    })
  ).pipe(Effect.mapError(invalid("read watch")))

const decodeEvent = (row: unknown) =>
  Effect.flatMap(Schema.decodeUnknown(EventRow)(row), (r) =>
    Schema.decodeUnknown(EventRecord)({
      messageId: r.message_id,
      receivedAt: r.received_at,
      ...(r.problem === null ? { payload: r.payload } : { problem: r.problem })
    })
  ).pipe(Effect.mapError(invalid("read event")))

/** `encodeResults`' words, about one payload. */
const payloadProblem = (problem: string) =>
  problem.replace(/^the results (are|hold|cannot)/, (_, verb: string) =>
    verb === "are" ? "it is" : verb === "hold" ? "it holds" : "it cannot"
  )

export const make: Effect.Effect<Service, Errors.StoreUnavailable, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* sql`CREATE TABLE IF NOT EXISTS partner_watches (
    inbox_key TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    app TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    inbox_id TEXT NOT NULL,
    state TEXT NOT NULL,
    problem_tag TEXT,
    problem_message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`.pipe(Effect.mapError(unavailable("migrate")))
  yield* sql`CREATE TABLE IF NOT EXISTS partner_trigger_events (
    inbox_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    payload TEXT,
    problem TEXT,
    PRIMARY KEY (inbox_key, message_id)
  )`.pipe(Effect.mapError(unavailable("migrate")))

  const upsert = (w: WatchRecord) =>
    sql`INSERT INTO partner_watches ${sql.insert({
      inbox_key: w.key,
      tenant_id: w.user.tenantId,
      user_id: w.user.userId,
      app: w.app,
      trigger_key: w.trigger,
      inbox_id: w.inbox,
      state: w.state,
      problem_tag: null,
      problem_message: null,
      created_at: w.createdAt,
      updated_at: w.updatedAt
    })} ON CONFLICT (inbox_key) DO UPDATE SET inbox_id = excluded.inbox_id, state = excluded.state,
      problem_tag = NULL, problem_message = NULL, updated_at = excluded.updated_at`.pipe(
      Effect.asVoid,
      Effect.mapError(unavailable("record watch"))
    )

  const stopped = (key: Domain.InboxKey, problem: { readonly tag: string; readonly message: string } | undefined) =>
    Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => sql`UPDATE partner_watches SET state = 'stopped', problem_tag = ${problem?.tag ?? null},
        problem_message = ${problem?.message.slice(0, 2000) ?? null}, updated_at = ${now}
        WHERE inbox_key = ${key}`
    ).pipe(Effect.asVoid, Effect.mapError(unavailable("stop watch")))

  const watches = (user: Domain.EndUser) =>
    sql`SELECT * FROM partner_watches WHERE tenant_id = ${user.tenantId} AND user_id = ${user.userId}
      ORDER BY created_at DESC`.pipe(
      Effect.mapError(unavailable("list watches")),
      Effect.flatMap(Effect.forEach(decodeWatch))
    )

  const consuming = sql`SELECT * FROM partner_watches WHERE state = 'consuming'`.pipe(
    Effect.mapError(unavailable("list watches")),
    Effect.flatMap(Effect.forEach(decodeWatch))
  )

  const record = (key: Domain.InboxKey, message: Domain.MessageId, payload: unknown) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      // The payload comes from a third-party app through Zapier: stored within the same limits as run results.
      const encoded = encodeResults([payload])
      const row =
        "json" in encoded
          ? { payload: encoded.json.slice(1, -1), problem: null }
          : { payload: null, problem: `The payload was not stored: ${payloadProblem(encoded.problem)}.` }
      return sql`INSERT INTO partner_trigger_events ${sql.insert({
        inbox_key: key,
        message_id: message,
        received_at: now,
        ...row
      })} ON CONFLICT (inbox_key, message_id) DO NOTHING RETURNING message_id`
    }).pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.mapError(unavailable("record event"))
    )

  // One statement, so the count and the rows are read from one snapshot: with a COUNT and a SELECT apart, an event
  // recorded in between (the consumer runs beside the page) made `total` disagree with the rows. The window count is
  // taken before the LIMIT, over every event of the watch; with no row (no event) the total is 0.
  const events = (key: Domain.InboxKey, limit: number) =>
    sql`SELECT message_id, received_at, payload, problem, COUNT(*) OVER () AS total FROM partner_trigger_events
      WHERE inbox_key = ${key} ORDER BY received_at DESC, rowid DESC LIMIT ${Math.max(1, limit)}`.pipe(
      Effect.mapError(unavailable("list events")),
      Effect.flatMap((rows) =>
        Effect.map(Effect.forEach(rows.slice(0, Math.max(0, limit)), decodeEvent), (latest) => ({
          total: Number(rows[0]?.total ?? 0),
          latest
        }))
      )
    )

  return TriggerStore.of({ upsert, stopped, watches, consuming, record, events })
})

export const layer: Layer.Layer<TriggerStore, Errors.StoreUnavailable, SqlClient.SqlClient> = Layer.effect(
  TriggerStore,
  make
)
