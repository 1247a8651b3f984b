/**
 * The partner's own record of the runs it started (a table in its SQLite database): who started which run, its
 * state, Zapier's last status, and the result or the error. Zapier keeps run data for 7 days only, and a run
 * outlives the request that started it: `DurableRuns` awaits it durably (`key`), and `Runs` copies its end here.
 * Inputs are not stored.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Domain, Errors } from "@effect-zapier/core"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import type { RunView } from "./Api.js"

/** One run as stored. */
export class RunRecord extends Schema.Class<RunRecord>("partner-app/RunRecord")({
  runId: Domain.ActionRunId,
  /** The durable run's key (`DurableRuns`), which holds the run's end. */
  key: Schema.String,
  user: Domain.EndUser,
  app: Domain.AppId,
  action: Domain.ActionKey,
  state: Schema.Literal("pending", "succeeded", "failed"),
  status: Schema.String,
  results: Schema.optional(Schema.Array(Schema.Unknown)),
  error: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String })),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
}) {
  get view(): RunView {
    return {
      runId: this.runId,
      app: this.app,
      action: this.action,
      state: this.state,
      status: this.status,
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
      ...(this.results !== undefined ? { results: this.results } : {}),
      ...(this.error !== undefined ? { error: this.error } : {})
    }
  }
}

/**
 * What the app stores of a run's results (and later sends to the page): Zapier's `results` come from a third-party
 * app, so a result nested deeper than `depth` levels, with more than `nodes` values, or longer than `bytes` once
 * encoded is not stored; the run is recorded as failed with the tag `ResultRejected` instead (JSON.stringify
 * itself throws on a few thousand levels, which would leave the run pending forever).
 */
export const resultLimits = { depth: 32, nodes: 20_000, bytes: 256 * 1024 } as const

/** The results as JSON within {@link resultLimits}, or why not (checked without recursion). */
export const encodeResults = (
  results: ReadonlyArray<unknown>
): { readonly json: string } | { readonly problem: string } => {
  const stack: Array<readonly [unknown, number]> = [[results, 1]]
  let nodes = 0
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (++nodes > resultLimits.nodes) return { problem: `the results hold more than ${resultLimits.nodes} values` }
    if (value === null || typeof value !== "object") continue
    if (depth > resultLimits.depth)
      return { problem: `the results are nested deeper than ${resultLimits.depth} levels` }
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1])
  }
  let json: string
  try {
    json = JSON.stringify(results)
  } catch {
    return { problem: "the results cannot be encoded as JSON" }
  }
  if (json.length > resultLimits.bytes) return { problem: `the results are larger than ${resultLimits.bytes} bytes` }
  return { json }
}

/** How a run ended. */
export type Outcome =
  | { readonly _tag: "Succeeded"; readonly results: ReadonlyArray<unknown> }
  | { readonly _tag: "Failed"; readonly status: string; readonly tag: string; readonly message: string }

export interface Service {
  readonly insert: (record: RunRecord) => Effect.Effect<void, Errors.StoreUnavailable>
  /** The run, if it is this user's. */
  readonly find: (
    user: Domain.EndUser,
    runId: Domain.ActionRunId
  ) => Effect.Effect<Option.Option<RunRecord>, Errors.StoreUnavailable>
  /** Records Zapier's status of a pending run. */
  readonly setStatus: (runId: Domain.ActionRunId, status: string) => Effect.Effect<void, Errors.StoreUnavailable>
  /** Records the end of a run (once: an ended run is never changed again). */
  readonly finish: (runId: Domain.ActionRunId, outcome: Outcome) => Effect.Effect<void, Errors.StoreUnavailable>
}

export class RunStore extends Context.Tag("partner-app/RunStore")<RunStore, Service>() {}

/** A row as SQLite returns it (results as JSON text). */
const Row = Schema.Struct({
  run_id: Schema.String,
  durable_key: Schema.String,
  tenant_id: Schema.String,
  user_id: Schema.String,
  app: Schema.String,
  action: Schema.String,
  state: Schema.String,
  status: Schema.String,
  results: Schema.NullOr(Schema.parseJson(Schema.Array(Schema.Unknown))),
  error_tag: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number
})

/** A stored row, decoded (every column checked) into a record. */
const decodeRow = (row: unknown) =>
  Effect.flatMap(Schema.decodeUnknown(Row)(row), (r) =>
    Schema.decodeUnknown(RunRecord)({
      runId: r.run_id,
      key: r.durable_key,
      user: { userId: r.user_id, tenantId: r.tenant_id },
      app: r.app,
      action: r.action,
      state: r.state,
      status: r.status,
      ...(r.results !== null ? { results: r.results } : {}),
      ...(r.error_tag !== null ? { error: { tag: r.error_tag, message: r.error_message ?? "" } } : {}),
      createdAt: r.created_at,
      updatedAt: r.updated_at
    })
  )

/** A failure of the partner's database as the typed store error (the driver's message, bounded). */
export const unavailable = (operation: string) => (error: SqlError) =>
  new Errors.StoreUnavailable({ operation, reason: `the partner database failed (${error.message.slice(0, 200)})` })

export const make: Effect.Effect<Service, Errors.StoreUnavailable, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* sql`CREATE TABLE IF NOT EXISTS partner_runs (
    run_id TEXT PRIMARY KEY,
    durable_key TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    app TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    results TEXT,
    error_tag TEXT,
    error_message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`.pipe(Effect.mapError(unavailable("migrate")))

  return RunStore.of({
    insert: (r) =>
      sql`INSERT INTO partner_runs ${sql.insert({
        run_id: r.runId,
        durable_key: r.key,
        tenant_id: r.user.tenantId,
        user_id: r.user.userId,
        app: r.app,
        action: r.action,
        state: r.state,
        status: r.status,
        results: null,
        error_tag: null,
        error_message: null,
        created_at: r.createdAt,
        updated_at: r.updatedAt
      })}`.pipe(Effect.asVoid, Effect.mapError(unavailable("insert run"))),
    find: (user, runId) =>
      sql`SELECT * FROM partner_runs WHERE run_id = ${runId} AND tenant_id = ${user.tenantId} AND user_id = ${user.userId}`.pipe(
        Effect.mapError(unavailable("find run")),
        Effect.flatMap((rows) =>
          rows.length === 0
            ? Effect.succeed(Option.none())
            : decodeRow(rows[0]).pipe(
                Effect.map(Option.some),
                Effect.mapError(
                  (e) =>
                    new Errors.StoreUnavailable({
                      operation: "find run",
                      reason: `a stored run is invalid: ${e.message}`
                    })
                )
              )
        )
      ),
    setStatus: (runId, status) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          sql`UPDATE partner_runs SET status = ${status.slice(0, 40)}, updated_at = ${now}
              WHERE run_id = ${runId} AND state = 'pending' AND status <> ${status.slice(0, 40)}`
      ).pipe(Effect.asVoid, Effect.mapError(unavailable("update run status"))),
    finish: (runId, outcome) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend(() => {
          const encoded = outcome._tag === "Succeeded" ? encodeResults(outcome.results) : undefined
          if (encoded !== undefined && "json" in encoded) {
            return sql`UPDATE partner_runs SET state = 'succeeded', status = 'success', results = ${encoded.json},
                updated_at = ${now} WHERE run_id = ${runId} AND state = 'pending'`
          }
          const failure =
            outcome._tag === "Failed"
              ? outcome
              : {
                  status: "success",
                  tag: "ResultRejected",
                  message: `The run succeeded at Zapier, but ${encoded?.problem ?? "its results were refused"}; they were not stored.`
                }
          return sql`UPDATE partner_runs SET state = 'failed', status = ${failure.status}, error_tag = ${failure.tag},
                error_message = ${failure.message.slice(0, 2000)}, updated_at = ${now}
                WHERE run_id = ${runId} AND state = 'pending'`
        })
      ).pipe(Effect.asVoid, Effect.mapError(unavailable("finish run")))
  })
})

export const layer: Layer.Layer<RunStore, Errors.StoreUnavailable, SqlClient.SqlClient> = Layer.effect(RunStore, make)
