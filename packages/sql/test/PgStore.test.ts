/**
 * The store suite against a real PostgreSQL server: `ZAPIER_TEST_PG_URL` (default
 * `postgres://postgres@127.0.0.1:5432/test`). Each test runs in a schema of its own, dropped afterwards, so runs
 * in parallel never meet. Without a server the tests are skipped with the reason printed, unless `CI` is set: then
 * they run and fail.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import { StoreUnavailable } from "@effect-zapier/core/Errors"
import { SqlStore } from "@effect-zapier/sql"
import * as PgStore from "@effect-zapier/sql/PgStore"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Str from "effect/String"
import { isolatedSchema, skip, unavailable, urlFor } from "./Pg.js"
import { alice, attempt, cid, fleetSuite, slack, storeSuite, t0 } from "./StoreSuite.js"

const fresh = Layer.unwrapScoped(Effect.map(isolatedSchema, (schema) => PgStore.layer({ url: urlFor(schema) })))

const buildStore = <E>(layer: Layer.Layer<ConnectionStore, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, ConnectionStore))

/** Runs `f` with a client on the schema (to look at what the store wrote). */
const inSchema = <A, E>(schema: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(
    Effect.provide(
      Layer.scopedContext(
        Effect.map(PgClient.make({ url: urlFor(schema) }), (client) => SqlClient.SqlClient.context(client))
      ).pipe(Layer.provide(Reactivity.layer))
    )
  )

describe.skipIf(skip)("PostgreSQL", () => {
  it.runIf(unavailable !== undefined)("is reachable (required when CI is set)", () => {
    assert.fail(`${unavailable}. Start it, or point ZAPIER_TEST_PG_URL at one.`)
  })

  storeSuite("PgStore", fresh)

  fleetSuite(
    "PgStore: two backends (two pools) on one database",
    Effect.gen(function* () {
      const schema = yield* isolatedSchema
      const one = yield* buildStore(PgStore.layer({ url: urlFor(schema), maxConnections: 4 }))
      const two = yield* buildStore(PgStore.layer({ url: urlFor(schema), maxConnections: 4 }))
      return [one, two] as const
    }),
    { rounds: 40 }
  )

  describe("PgStore specifics", () => {
    it.scoped("racing sets leave exactly one row for the key, and racing closes exactly one closed_at", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const backends = yield* Effect.all(
          Array.from({ length: 4 }, () => buildStore(PgStore.layer({ url: urlFor(schema), maxConnections: 3 })))
        )
        yield* backends[0].openAttempt(attempt(alice, slack, "race", t0))
        const [sets, closes] = yield* Effect.all(
          [
            Effect.all(
              backends.flatMap((b, i) => [b.set(alice, slack, cid(`c-${i}`)), b.set(alice, slack, cid(`d-${i}`))]),
              { concurrency: "unbounded" }
            ),
            Effect.all(
              backends.flatMap((b) => [b.closeAttempt("race"), b.closeAttempt("race")]),
              { concurrency: "unbounded" }
            )
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(sets.length, 8)
        assert.strictEqual(closes.filter((c) => c).length, 1)
        const rows = yield* inSchema(
          schema,
          (sql) =>
            sql<{
              connection_id: string
            }>`SELECT connection_id FROM effect_zapier_connections WHERE tenant_id = 'acme' AND user_id = 'alice'`
        )
        assert.strictEqual(rows.length, 1)
        const got = Option.getOrThrow(yield* backends[3].get(alice, slack))
        assert.strictEqual(got.connectionId, rows[0].connection_id)
        const closed = yield* inSchema(
          schema,
          (sql) =>
            sql<{ n: string }>`SELECT count(*) AS n FROM effect_zapier_connect_attempts WHERE closed_at IS NOT NULL`
        )
        assert.strictEqual(Number(closed[0].n), 1)
      })
    )

    it.scoped("backends starting at once on an empty database migrate it once, without an error", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const stores = yield* Effect.all(
          Array.from({ length: 4 }, () => buildStore(PgStore.layer({ url: urlFor(schema), maxConnections: 2 }))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(stores.length, 4)
        const migrations = yield* inSchema(
          schema,
          (sql) => sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM effect_zapier_migrations`
        )
        assert.deepStrictEqual(
          migrations.map((m) => [m.migration_id, m.name]),
          [
            [1, "create_tables"],
            [2, "connection_expiry"]
          ]
        )
        yield* stores[0].set(alice, slack, cid("c-1"))
        assert.strictEqual(Option.getOrThrow(yield* stores[3].get(alice, slack)).connectionId, "c-1")
      })
    )

    it.scoped("a database made by the first version is upgraded: its rows kept, the expiry column added", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        // The tables and the migration record exactly as the first version of the store left them.
        yield* inSchema(schema, (sql) =>
          Effect.all([
            sql`CREATE TABLE effect_zapier_migrations (migration_id integer primary key,
              created_at timestamp with time zone not null default now(), name text not null)`,
            sql`INSERT INTO effect_zapier_migrations (migration_id, name) VALUES (1, 'create_tables')`,
            sql`CREATE TABLE effect_zapier_connections (tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
              app_id TEXT NOT NULL, connection_id TEXT NOT NULL, stored_at timestamptz NOT NULL,
              verified_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, user_id, app_id))`,
            sql`CREATE TABLE effect_zapier_connect_attempts (state TEXT NOT NULL PRIMARY KEY,
              seq bigint GENERATED BY DEFAULT AS IDENTITY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
              app_id TEXT NOT NULL, reconnect_id TEXT, opened_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
              closed_at timestamptz)`,
            sql`INSERT INTO effect_zapier_connections VALUES ('acme', 'alice', ${slack}, 'c-old', ${new Date(t0)}, ${new Date(t0)})`
          ])
        )
        const store = yield* buildStore(PgStore.layer({ url: urlFor(schema) }))
        const kept = Option.getOrThrow(yield* store.get(alice, slack))
        assert.deepStrictEqual(
          [kept.connectionId, DateTime.toEpochMillis(kept.storedAt), kept.expiresAt],
          ["c-old", t0, undefined]
        )
        assert.strictEqual(yield* store.markExpiring(cid("c-old"), DateTime.unsafeMake(t0 + 5_000)), 1)
        const marked = Option.getOrThrow(yield* store.get(alice, slack))
        assert.strictEqual(DateTime.toEpochMillis(marked.expiresAt!), t0 + 5_000)
        const migrations = yield* inSchema(
          schema,
          (sql) =>
            sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM effect_zapier_migrations
ORDER BY migration_id`
        )
        assert.deepStrictEqual(
          migrations.map((m) => [m.migration_id, m.name]),
          [
            [1, "create_tables"],
            [2, "connection_expiry"]
          ]
        )
      })
    )

    it.scoped("a table prefix keeps every table under it", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const store = yield* buildStore(PgStore.layer({ url: urlFor(schema), tablePrefix: "partner_zap_" }))
        yield* store.set(alice, slack, cid("c-1"))
        const tables = yield* inSchema(
          schema,
          (sql) =>
            sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables
WHERE table_schema = ${schema} ORDER BY table_name`
        )
        assert.deepStrictEqual(
          tables.map((t) => t.table_name),
          ["partner_zap_connect_attempts", "partner_zap_connections", "partner_zap_migrations"]
        )
      })
    )

    it.scoped("SqlStore.layer runs on the app's own client, even one that renames result columns", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const client = Layer.scopedContext(
          Effect.map(
            PgClient.make({
              url: urlFor(schema),
              transformResultNames: Str.snakeToCamel,
              transformQueryNames: Str.camelToSnake
            }),
            (c) => SqlClient.SqlClient.context(c)
          )
        ).pipe(Layer.provide(Reactivity.layer))
        const store = yield* buildStore(SqlStore.layer().pipe(Layer.provide(client)))
        const stored = yield* store.set(alice, slack, cid("c-1"))
        assert.strictEqual(stored.connectionId, "c-1")
        yield* store.openAttempt(attempt(alice, slack, "s-1", t0, 60_000, cid("c-0")))
        const found = Option.getOrThrow(yield* store.latestAttempt(alice, slack))
        assert.strictEqual(found.attempt.reconnect, "c-0")
      })
    )

    it.scoped("PgStore.layerFromEnv reads ZAPIER_STORE_PG_URL and ZAPIER_STORE_TABLE_PREFIX", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const env = new Map([
          ["ZAPIER_STORE_PG_URL", Redacted.value(urlFor(schema))],
          ["ZAPIER_STORE_TABLE_PREFIX", "env_"]
        ])
        const store = yield* buildStore(PgStore.layerFromEnv).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(env))
        )
        yield* store.set(alice, slack, cid("c-env"))
        const rows = yield* inSchema(
          schema,
          (sql) => sql<{ connection_id: string }>`SELECT connection_id FROM env_connections`
        )
        assert.deepStrictEqual(
          rows.map((r) => r.connection_id),
          ["c-env"]
        )
      })
    )

    it.scoped("an invalid table prefix is refused with StoreUnavailable(configure)", () =>
      Effect.gen(function* () {
        const schema = yield* isolatedSchema
        const exit = yield* Effect.exit(buildStore(PgStore.layer({ url: urlFor(schema), tablePrefix: "x; DROP" })))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        const e = Option.getOrThrow(error)
        assert.isTrue(e instanceof StoreUnavailable)
        if (e instanceof StoreUnavailable) {
          assert.strictEqual(e.operation, "configure")
          assert.include(e.message, "tablePrefix")
        }
      })
    )
  })
})

describe("PgStore failures (no server needed)", () => {
  const canary = "s3cret-Canary-9f1c"

  const failure = (layer: Layer.Layer<ConnectionStore, unknown>) =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Layer.build(layer))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isSuccess(exit)) return assert.fail("the layer was built")
      const error = Cause.failureOption(exit.cause)
      assert.isTrue(Option.isSome(error), `a typed failure, not a defect: ${Cause.pretty(exit.cause)}`)
      return { error: Option.getOrThrow(error), pretty: Cause.pretty(exit.cause) }
    }).pipe(Effect.scoped)

  it.live("nothing listening: StoreUnavailable(connect) naming the code, never the password or URL", () =>
    Effect.gen(function* () {
      const { error, pretty } = yield* failure(
        PgStore.layer({ url: Redacted.make(`postgres://zapier:${canary}@127.0.0.1:1/app`) })
      )
      assert.isTrue(error instanceof StoreUnavailable)
      const e = error as StoreUnavailable
      assert.strictEqual(e.operation, "connect")
      assert.include(e.message, "ECONNREFUSED")
      assert.include(e.message, "check the host and port")
      for (const text of [e.message, String(e), JSON.stringify(e), pretty]) {
        assert.notInclude(text, canary)
        assert.notInclude(text, "127.0.0.1:1")
      }
    })
  )

  it.live("layerFromEnv without ZAPIER_STORE_PG_URL fails with a ConfigError naming it", () =>
    Effect.gen(function* () {
      const { error } = yield* failure(PgStore.layerFromEnv)
      assert.include(String(error), "ZAPIER_STORE_PG_URL")
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
  )
})
