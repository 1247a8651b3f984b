/**
 * The runs table beside the workflow engine's journal: which key started which execution with which request, and
 * the "about to create" marker of each run.
 *
 * - `register` makes `start` idempotent per key and detects a key reused with a different request (the engine
 *   itself keeps the first payload of an execution id and silently ignores later ones).
 * - `claimCreate` is the marker: an atomic compare-and-set written just before the create-run POST. A replay of the
 *   create step (after a crash, on this or another replica) finds the claim and never POSTs again: it returns the
 *   run id recorded after the POST, or, when the crash came between the POST and that record, reports the run as
 *   `RunOutcomeUnknown` with the action, the connection and the time of the claim.
 * - `recordRunId` records Zapier's run id as soon as the POST answers, and lets a run callback (which carries only
 *   the run id) find its execution.
 *
 * `layerMemory` keeps it in memory (tests, one process); `layerSql` in the same database as the engine (PostgreSQL
 * or SQLite), in one table named `<prefix>_runs`.
 *
 * @example
 * ```ts
 * import { RunRegistry } from "@effect-zapier/workflow"
 *
 * const registry = RunRegistry.layerSql({ prefix: "zapier_durable" }) // needs a SqlClient
 * ```
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { ActionId, ActionRunId, ConnectionId } from "@effect-zapier/core/Domain"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { RunStoreUnavailable } from "./Errors.js"

/**
 * One key's run, as `start` registered it.
 * @since 0.1.0
 * @category models
 */
export interface Registration {
  readonly key: string
  readonly executionId: string
  /** SHA-256 of the canonical JSON of the request: the same key with another request is a conflict. */
  readonly fingerprint: string
  /** The request, encoded as JSON (to restart an execution whose start was cut short). */
  readonly request: string
  readonly createdAt: number
  /** Zapier's run id, once the create answered (set by `recordRunId`; ignored by `register`). */
  readonly runId?: ActionRunId | undefined
}

/**
 * What `claimCreate` found: the claim is ours (POST now), or an earlier attempt holds it.
 * @since 0.1.0
 * @category models
 */
export type Claim =
  | { readonly _tag: "Claimed" }
  | {
      readonly _tag: "Taken"
      /** When the earlier attempt claimed (epoch millis). */
      readonly at: number
      readonly actionId: ActionId | undefined
      readonly connection: ConnectionId | null
      /** The run the earlier attempt created, when it lived long enough to record it. */
      readonly runId: ActionRunId | undefined
    }

/**
 * What the create step writes in its claim.
 * @since 0.1.0
 * @category models
 */
export interface ClaimInfo {
  readonly actionId: ActionId
  readonly connection: ConnectionId | null
  readonly at: number
}

/** @since 0.1.0 */
export interface Service {
  /** Inserts the registration unless the key has one; returns the stored one (compare its fingerprint). */
  readonly register: (registration: Registration) => Effect.Effect<Registration, RunStoreUnavailable>
  readonly lookup: (key: string) => Effect.Effect<Option.Option<Registration>, RunStoreUnavailable>
  /** The "about to create" marker: takes the key's claim if nobody holds it. */
  readonly claimCreate: (key: string, info: ClaimInfo) => Effect.Effect<Claim, RunStoreUnavailable>
  /** Gives the claim back after a create that provably created nothing (Zapier refused it). */
  readonly releaseClaim: (key: string) => Effect.Effect<void, RunStoreUnavailable>
  readonly recordRunId: (key: string, runId: ActionRunId) => Effect.Effect<void, RunStoreUnavailable>
  /** The registration whose create recorded this Zapier run id. */
  readonly findByRunId: (runId: ActionRunId) => Effect.Effect<Option.Option<Registration>, RunStoreUnavailable>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RunRegistry extends Context.Tag("@effect-zapier/workflow/RunRegistry")<RunRegistry, Service>() {}

interface Row {
  readonly registration: Registration
  readonly claimedAt: number | undefined
  readonly actionId: ActionId | undefined
  readonly connection: ConnectionId | null
  readonly runId: ActionRunId | undefined
}

/**
 * The registry in memory (lost with the process; for tests and the memory engine).
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.gen(function* () {
  const rows = yield* Ref.make(new Map<string, Row>())
  const update = (key: string, f: (row: Row) => Row) =>
    Ref.update(rows, (map) => {
      const row = map.get(key)
      if (row === undefined) return map
      const next = new Map(map)
      next.set(key, f(row))
      return next
    })
  return RunRegistry.of({
    register: (registration) =>
      Ref.modify(rows, (map) => {
        const existing = map.get(registration.key)
        if (existing !== undefined) return [existing.registration, map]
        const next = new Map(map)
        next.set(registration.key, {
          registration,
          claimedAt: undefined,
          actionId: undefined,
          connection: null,
          runId: undefined
        })
        return [registration, next]
      }),
    lookup: (key) =>
      Effect.map(Ref.get(rows), (map) =>
        Option.map(Option.fromNullable(map.get(key)), (r) => ({ ...r.registration, runId: r.runId }))
      ),
    claimCreate: (key, info) =>
      Ref.modify(rows, (map): [Claim, Map<string, Row>] => {
        const row = map.get(key)
        if (row === undefined) return [{ _tag: "Claimed" }, map]
        if (row.claimedAt !== undefined) {
          return [
            { _tag: "Taken", at: row.claimedAt, actionId: row.actionId, connection: row.connection, runId: row.runId },
            map
          ]
        }
        const next = new Map(map)
        next.set(key, { ...row, claimedAt: info.at, actionId: info.actionId, connection: info.connection })
        return [{ _tag: "Claimed" }, next]
      }),
    releaseClaim: (key) => update(key, (row) => ({ ...row, claimedAt: undefined })),
    recordRunId: (key, runId) => update(key, (row) => ({ ...row, runId })),
    findByRunId: (runId) =>
      Effect.map(Ref.get(rows), (map) => {
        for (const row of map.values()) if (row.runId === runId) return Option.some(row.registration)
        return Option.none()
      })
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RunRegistry> = Layer.effect(RunRegistry, makeMemory)

/** @since 0.1.0 */
export interface SqlOptions {
  /** The table is `<prefix>_runs` (default `zapier_durable`). */
  readonly prefix?: string | undefined
}

interface SqlRow {
  readonly key: string
  readonly execution_id: string
  readonly fingerprint: string
  readonly request: string
  readonly created_at: number | string
  readonly claimed_at: number | string | null
  readonly action_id: string | null
  readonly connection_id: string | null
  readonly run_id: string | null
}

const toRegistration = (row: SqlRow): Registration => ({
  key: row.key,
  executionId: row.execution_id,
  fingerprint: row.fingerprint,
  request: row.request,
  createdAt: Number(row.created_at),
  runId: (row.run_id ?? undefined) as ActionRunId | undefined
})

const unavailable = (operation: string) => (error: { readonly message: string }) =>
  new RunStoreUnavailable({ operation: `RunRegistry.${operation}`, reason: error.message })

/**
 * The registry in SQL (PostgreSQL or SQLite), created if missing when the layer is built.
 * @since 0.1.0
 * @category constructors
 */
export const makeSql = (options?: SqlOptions): Effect.Effect<Service, RunStoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(`${options?.prefix ?? "zapier_durable"}_runs`)
    const bigint = sql.onDialectOrElse({ sqlite: () => sql.literal("INTEGER"), orElse: () => sql.literal("BIGINT") })
    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
      key TEXT PRIMARY KEY,
      execution_id TEXT NOT NULL,
      fingerprint TEXT NOT NULL,
      request TEXT NOT NULL,
      created_at ${bigint} NOT NULL,
      claimed_at ${bigint},
      action_id TEXT,
      connection_id TEXT,
      run_id TEXT
    )`.pipe(Effect.mapError(unavailable("migrate")))
    const runIdIndex = sql(`${options?.prefix ?? "zapier_durable"}_runs_run_id`)
    yield* sql`CREATE INDEX IF NOT EXISTS ${runIdIndex} ON ${table} (run_id)`.pipe(
      Effect.mapError(unavailable("migrate"))
    )
    const select = (key: string) =>
      Effect.map(sql<SqlRow>`SELECT * FROM ${table} WHERE key = ${key}`, (rows) => Option.fromNullable(rows[0]))

    return RunRegistry.of({
      register: (r) =>
        Effect.gen(function* () {
          yield* sql`INSERT INTO ${table} (key, execution_id, fingerprint, request, created_at)
            VALUES (${r.key}, ${r.executionId}, ${r.fingerprint}, ${r.request}, ${r.createdAt})
            ON CONFLICT (key) DO NOTHING`
          const stored = yield* select(r.key)
          return Option.match(stored, { onNone: () => r, onSome: toRegistration })
        }).pipe(Effect.mapError(unavailable("register"))),
      lookup: (key) => Effect.map(select(key), Option.map(toRegistration)).pipe(Effect.mapError(unavailable("lookup"))),
      claimCreate: (key, info) =>
        Effect.gen(function* () {
          const taken = yield* sql<{ key: string }>`UPDATE ${table}
            SET claimed_at = ${info.at}, action_id = ${info.actionId}, connection_id = ${info.connection}
            WHERE key = ${key} AND claimed_at IS NULL
            RETURNING key`
          if (taken.length > 0) return { _tag: "Claimed" } as const
          const row = yield* select(key)
          if (Option.isNone(row) || row.value.claimed_at === null) return { _tag: "Claimed" } as const
          return {
            _tag: "Taken",
            at: Number(row.value.claimed_at),
            actionId: (row.value.action_id ?? undefined) as ActionId | undefined,
            connection: row.value.connection_id as ConnectionId | null,
            runId: (row.value.run_id ?? undefined) as ActionRunId | undefined
          } as const
        }).pipe(Effect.mapError(unavailable("claimCreate"))),
      releaseClaim: (key) =>
        sql`UPDATE ${table} SET claimed_at = NULL WHERE key = ${key} AND run_id IS NULL`.pipe(
          Effect.asVoid,
          Effect.mapError(unavailable("releaseClaim"))
        ),
      recordRunId: (key, runId) =>
        sql`UPDATE ${table} SET run_id = ${runId} WHERE key = ${key}`.pipe(
          Effect.asVoid,
          Effect.mapError(unavailable("recordRunId"))
        ),
      findByRunId: (runId) =>
        Effect.map(sql<SqlRow>`SELECT * FROM ${table} WHERE run_id = ${runId}`, (rows) =>
          Option.map(Option.fromNullable(rows[0]), toRegistration)
        ).pipe(Effect.mapError(unavailable("findByRunId")))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<RunRegistry, RunStoreUnavailable, SqlClient.SqlClient> =>
  Layer.effect(RunRegistry, makeSql(options))
