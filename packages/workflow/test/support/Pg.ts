/**
 * How the tests find PostgreSQL: `ZAPIER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`). Each
 * cluster test gets a database of its own (PostgreSQL advisory locks, which hold the shard locks, are per database),
 * dropped when its scope closes. `skip` is true when the server cannot be reached and `CI` is not set.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

export const url = process.env.ZAPIER_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const admin = PgClient.layer({ url: Redacted.make(url), connectTimeout: "3 seconds", maxConnections: 2 })

export const unavailable: string | undefined = await Effect.runPromise(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`SELECT 1`
  }).pipe(
    Effect.provide(admin),
    Effect.as(undefined),
    Effect.catchAllCause((cause) => Effect.succeed(`PostgreSQL is not reachable (${String(Cause.squash(cause))})`))
  )
)
export const skip = unavailable !== undefined && !process.env.CI
if (skip) console.warn(`Skipping the PostgreSQL tests: ${unavailable}. Set ZAPIER_TEST_PG_URL to run them.`)

/** The URL of another database on the same server. */
export const urlOf = (database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** A database of its own for one test (its URL), dropped (connections and all) when the scope closes. */
export const freshDatabase = Effect.gen(function* () {
  const sql = Context.get(yield* Layer.build(admin), SqlClient.SqlClient)
  const name = `ezw_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(sql`CREATE DATABASE ${sql(name)}`, () =>
    sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`.pipe(Effect.orDie)
  )
  return urlOf(name)
}).pipe(Effect.orDie)

/** Refuses (or allows again) new sessions to `database` and ends the open ones: the database is unavailable. */
export const setAvailable = (databaseUrl: string, available: boolean) =>
  Effect.gen(function* () {
    const sql = Context.get(yield* Layer.build(admin), SqlClient.SqlClient)
    const name = new URL(databaseUrl).pathname.slice(1)
    yield* sql`ALTER DATABASE ${sql(name)} ALLOW_CONNECTIONS ${sql.literal(available ? "true" : "false")}`
    if (!available) {
      yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`
    }
  }).pipe(Effect.scoped, Effect.orDie)
