/**
 * How the tests find PostgreSQL: `ZAPIER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
 * `unavailable` says why it cannot be reached (undefined when it can); `skip` is true when it cannot and `CI` is not
 * set, so a developer without a server sees the reason and CI fails instead of skipping.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

export const url = process.env.ZAPIER_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
/** The URL without its password, for messages. */
export const shownUrl = (() => {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparsable ZAPIER_TEST_PG_URL)"
  }
})()

const admin = Layer.scopedContext(
  Effect.map(PgClient.make({ url: Redacted.make(url), connectTimeout: "3 seconds" }), (client) =>
    SqlClient.SqlClient.context(client)
  )
).pipe(Layer.provide(Reactivity.layer))

export const unavailable: string | undefined = await Effect.runPromise(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`SELECT 1`
  }).pipe(
    Effect.provide(admin),
    Effect.as(undefined),
    Effect.catchAllCause((cause) => {
      const error = Cause.squash(cause)
      const driver = error instanceof SqlError ? error.cause : undefined
      const code = driver instanceof Error && "code" in driver ? `, ${driver.code}` : ""
      return Effect.succeed(`PostgreSQL at ${shownUrl} is not reachable (${String(error)}${code})`)
    })
  )
)
export const skip = unavailable !== undefined && !process.env.CI
if (skip) {
  console.warn(`Skipping the PostgreSQL tests: ${unavailable}. Set ZAPIER_TEST_PG_URL to run them.`)
}

/** A schema of its own for one test, dropped (with everything in it) when the scope closes. */
export const isolatedSchema = Effect.gen(function* () {
  // the admin pool outlives the schema: its finalizer runs after the DROP
  const sql = Context.get(yield* Layer.build(admin), SqlClient.SqlClient)
  return yield* Effect.acquireRelease(
    Effect.gen(function* () {
      const schema = `ezt_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`
      yield* sql`CREATE SCHEMA ${sql(schema)}`
      return schema
    }),
    (schema) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`.pipe(Effect.orDie)
  )
}).pipe(Effect.orDie)

/** The test URL with `search_path` set to `schema` (node-postgres passes `options` at startup). */
export const urlFor = (schema: string) => {
  const u = new URL(url)
  u.searchParams.set("options", `-c search_path=${schema}`)
  return Redacted.make(u.toString())
}
