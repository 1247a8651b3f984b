/**
 * Durable runs (`@effect-zapier/workflow`) on one process, next to the in-memory engine, against the in-memory
 * FakeZapier (no HTTP: what is measured is the engine and its database):
 * - `sqlWritesPerRun`: rows PostgreSQL wrote (inserted, updated, deleted, from its statistics views) per run taken
 *   from `start` to its result, on a fresh database (the engine's journal and mailbox, the runs table);
 * - `startsPerSec`: `DurableRuns.start` calls per second on one process (`DurablePg.layerSingle`), each returning
 *   once the run is committed;
 * - `inMemoryStartsPerSec`: the same on `DurableLayers.layerMemory` (nothing written anywhere).
 * PostgreSQL is `ZAPIER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the scenario is skipped
 * (`null`) when it cannot be reached.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { DurableLayers, DurableRuns } from "@effect-zapier/workflow"
import * as DurablePg from "@effect-zapier/workflow/DurablePg"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"

export interface Settings {
  /** Runs taken to their end for the writes per run. */
  readonly runs: number
  /** `start` calls timed (each engine). */
  readonly starts: number
  readonly concurrency: number
}

export interface Result {
  readonly sqlWritesPerRun: number
  readonly startsPerSec: number
  readonly inMemoryStartsPerSec: number
  readonly runs: number
  readonly starts: number
}

const pgUrl = process.env.ZAPIER_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const { sample } = FakeZapier

/** The Zapier services on a fresh in-memory model, with a connection for the sample user. */
const Zapier = EmbeddedActions.layer.pipe(
  Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
)

/** A READ run that ends at once (the first poll finds it). */
const request = (i: number) => ({
  user: sample.user,
  app: sample.slack,
  action: sample.listChannels,
  actionType: "READ" as const,
  inputs: { n: i },
  validateInputs: false
})

/** A run that stays pending: what runs beside the timed starts is one lookup and one create per run. */
const pendingRequest = (i: number) => ({
  user: sample.user,
  app: sample.slack,
  action: sample.exportChannelHistory,
  inputs: { n: i },
  validateInputs: false
})

const connect = Effect.flatMap(FakeZapier.FakeZapier, (zapier) => zapier.addConnection(sample.user, sample.slack))

const timeStarts = (prefix: string, settings: Settings) =>
  Effect.gen(function* () {
    const runs = yield* DurableRuns.DurableRuns
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: settings.starts }, (_, i) => i),
      (i) => runs.start(`${prefix}-${i}`, pendingRequest(i)),
      { concurrency: settings.concurrency, discard: true }
    )
    return settings.starts / ((performance.now() - started) / 1000)
  })

/** A database of its own, dropped afterwards (the engine's shard locks are per database). */
const freshDatabase = Effect.gen(function* () {
  const admin = Context.get(
    yield* Layer.build(PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 1 })),
    SqlClient.SqlClient
  )
  const name = `ezb_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(admin`CREATE DATABASE ${admin(name)}`, () =>
    admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(Effect.ignore)
  )
  const u = new URL(pgUrl)
  u.pathname = `/${name}`
  return u.toString()
})

/** Rows written so far in the current database, from PostgreSQL's statistics (after the backends flushed them). */
const rowsWritten = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // backends report their counts at most once a second when idle
  yield* Effect.sleep("1500 millis")
  yield* sql`SELECT pg_stat_clear_snapshot()`
  const rows = yield* sql<{ n: string | null }>`
    SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) AS n FROM pg_stat_user_tables`
  return Number(rows[0]?.n ?? 0)
})

export const run = (settings: Settings): Effect.Effect<Result | null> =>
  Effect.gen(function* () {
    const url = yield* freshDatabase
    const durable = DurablePg.layerSingle({ pg: { url: Redacted.make(url), maxConnections: 10 } }).pipe(
      Layer.provideMerge(Zapier)
    )
    const measured = yield* Effect.gen(function* () {
      yield* connect
      const runs = yield* DurableRuns.DurableRuns
      const probe = Context.get(
        yield* Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
        SqlClient.SqlClient
      )
      const before = yield* Effect.provideService(rowsWritten, SqlClient.SqlClient, probe)
      yield* Effect.forEach(
        Array.from({ length: settings.runs }, (_, i) => i),
        (i) => Effect.zipRight(runs.start(`writes-${i}`, request(i)), runs.await(`writes-${i}`)),
        { concurrency: settings.concurrency, discard: true }
      )
      const after = yield* Effect.provideService(rowsWritten, SqlClient.SqlClient, probe)
      const startsPerSec = yield* timeStarts("starts", settings)
      return { sqlWritesPerRun: (after - before) / settings.runs, startsPerSec }
    }).pipe(Effect.provide(durable))
    const inMemoryStartsPerSec = yield* Effect.zipRight(connect, timeStarts("memory", settings)).pipe(
      Effect.provide(DurableLayers.layerMemory().pipe(Layer.provideMerge(Zapier)))
    )
    return { ...measured, inMemoryStartsPerSec, runs: settings.runs, starts: settings.starts }
  }).pipe(
    Effect.scoped,
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logWarning("durable: skipped (PostgreSQL unavailable or the scenario failed)", cause), null)
    )
  )
