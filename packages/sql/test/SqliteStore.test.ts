import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import { StoreUnavailable } from "@effect-zapier/core/Errors"
import { SqlStore } from "@effect-zapier/sql"
import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Str from "effect/String"
import * as TestClock from "effect/TestClock"
import { alice, attempt, cid, fleetSuite, millis, plain, slack, storeSuite, t0 } from "./StoreSuite.js"

/** A temporary directory, removed with its files when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-zapier-sql-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const freshFile = Layer.unwrapScoped(
  Effect.map(tempDir, (dir) => SqliteStore.layer({ filename: path.join(dir, "store.db") }))
)

storeSuite("SqliteStore (temp file)", freshFile)
storeSuite("SqliteStore (:memory:)", SqliteStore.layer({ filename: ":memory:" }))
fleetSuite(
  "SqliteStore: two connections to one file",
  Effect.gen(function* () {
    const filename = path.join(yield* tempDir, "fleet.db")
    const open = storeOf(SqliteStore.layer({ filename }))
    return [yield* open, yield* open] as const
  })
)

/** Runs `f` on a plain client of the file (to look at, or tamper with, what the store wrote). */
const onFile = <A, E>(filename: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)

const storeOf = <E>(layer: Layer.Layer<ConnectionStore, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, ConnectionStore))

/** The typed failure of building `layer` (a defect fails the test). */
const buildFailure = (layer: Layer.Layer<ConnectionStore, unknown>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Layer.build(layer))
    if (Exit.isSuccess(exit)) return assert.fail("the layer was built")
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error)) return assert.fail(`a typed failure, not a defect: ${Cause.pretty(exit.cause)}`)
    return error.value
  }).pipe(Effect.scoped)

describe("SqliteStore specifics", () => {
  it.scoped("the data survives closing and reopening the file", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "durable.db")
      yield* TestClock.setTime(t0)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* storeOf(SqliteStore.layer({ filename }))
          yield* store.set(alice, slack, cid("c-1"))
          yield* store.openAttempt(attempt(alice, slack, "used", t0, 60_000, cid("c-0")))
          yield* store.openAttempt(attempt(alice, slack, "open", t0 + 1))
          assert.isTrue(yield* store.closeAttempt("used"))
        })
      )
      yield* TestClock.adjust("1 hour")
      const reopened = yield* storeOf(SqliteStore.layer({ filename }))
      const stored = Option.getOrThrow(yield* reopened.get(alice, slack))
      assert.deepStrictEqual([stored.connectionId, millis(stored.storedAt), millis(stored.verifiedAt)], ["c-1", t0, t0])
      assert.deepStrictEqual(plain(Option.getOrThrow(yield* reopened.findAttempt("used"))), {
        state: "used",
        tenantId: "acme",
        userId: "alice",
        app: slack,
        reconnect: cid("c-0"),
        openedAt: t0,
        expiresAt: t0 + 60_000,
        closed: true
      })
      assert.isFalse(yield* reopened.closeAttempt("used"))
      assert.strictEqual(Option.getOrThrow(yield* reopened.latestAttempt(alice, slack)).attempt.state, "open")
      assert.isTrue(yield* reopened.closeAttempt("open"))
    })
  )

  it.scoped("migrations run once: reopening records no new migration and keeps the tables", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "migrated.db")
      yield* Effect.scoped(storeOf(SqliteStore.layer({ filename })))
      yield* Effect.scoped(storeOf(SqliteStore.layer({ filename })))
      const migrations = yield* onFile(
        filename,
        (sql) => sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM effect_zapier_migrations`
      )
      assert.deepStrictEqual(
        migrations.map((m) => [m.migration_id, m.name]),
        [
          [1, "create_tables"],
          [2, "connection_expiry"]
        ]
      )
      const tables = yield* onFile(
        filename,
        (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
      )
      assert.deepStrictEqual(
        tables.map((t) => t.name),
        ["effect_zapier_connect_attempts", "effect_zapier_connections", "effect_zapier_migrations"]
      )
    })
  )

  it.scoped("a database made by the first version is upgraded: its rows kept, the expiry column added", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "v1.db")
      // The tables and the migration record exactly as the first version of the store left them.
      yield* onFile(filename, (sql) =>
        Effect.all([
          sql`CREATE TABLE effect_zapier_migrations (migration_id integer PRIMARY KEY NOT NULL,
            created_at datetime DEFAULT CURRENT_TIMESTAMP NOT NULL, name VARCHAR(255) NOT NULL)`,
          sql`INSERT INTO effect_zapier_migrations (migration_id, name) VALUES (1, 'create_tables')`,
          sql`CREATE TABLE effect_zapier_connections (tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
            app_id TEXT NOT NULL, connection_id TEXT NOT NULL, stored_at INTEGER NOT NULL,
            verified_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, user_id, app_id))`,
          sql`CREATE TABLE effect_zapier_connect_attempts (state TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL,
            user_id TEXT NOT NULL, app_id TEXT NOT NULL, reconnect_id TEXT, opened_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL, closed_at INTEGER)`,
          sql`INSERT INTO effect_zapier_connections VALUES ('acme', 'alice', ${slack}, 'c-old', ${t0}, ${t0})`
        ])
      )
      yield* TestClock.setTime(t0)
      const store = yield* storeOf(SqliteStore.layer({ filename }))
      const kept = Option.getOrThrow(yield* store.get(alice, slack))
      assert.deepStrictEqual([kept.connectionId, millis(kept.storedAt), kept.expiresAt], ["c-old", t0, undefined])
      assert.strictEqual(yield* store.markExpiring(cid("c-old"), DateTime.unsafeMake(t0 + 5_000)), 1)
      assert.strictEqual(millis(Option.getOrThrow(yield* store.get(alice, slack)).expiresAt!), t0 + 5_000)
      const migrations = yield* onFile(
        filename,
        (sql) => sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM effect_zapier_migrations`
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

  it.scoped("a table prefix keeps every table under it, beside the app's own tables", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "shared.db")
      yield* onFile(filename, (sql) => sql`CREATE TABLE connections (id INTEGER PRIMARY KEY, owner TEXT)`)
      const store = yield* storeOf(SqliteStore.layer({ filename, tablePrefix: "zap_" }))
      yield* store.set(alice, slack, cid("c-1"))
      const tables = yield* onFile(
        filename,
        (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
      )
      assert.deepStrictEqual(
        tables.map((t) => t.name),
        ["connections", "zap_connect_attempts", "zap_connections", "zap_migrations"]
      )
    })
  )

  it.scoped("SqlStore.layer runs on the app's own client, even one that renames columns", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "own-client.db")
      const client = SqliteClient.layer({
        filename,
        transformResultNames: Str.snakeToCamel,
        transformQueryNames: Str.camelToSnake
      })
      const store = yield* storeOf(SqlStore.layer().pipe(Layer.provide(client)))
      yield* store.set(alice, slack, cid("c-1"))
      yield* store.openAttempt(attempt(alice, slack, "s-1", t0, 60_000, cid("c-0")))
      assert.strictEqual(Option.getOrThrow(yield* store.get(alice, slack)).connectionId, "c-1")
      assert.strictEqual(Option.getOrThrow(yield* store.latestAttempt(alice, slack)).attempt.reconnect, "c-0")
    })
  )

  it.scoped("layerFromEnv reads ZAPIER_STORE_SQLITE_PATH and ZAPIER_STORE_TABLE_PREFIX", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "env.db")
      const env = new Map([
        ["ZAPIER_STORE_SQLITE_PATH", filename],
        ["ZAPIER_STORE_TABLE_PREFIX", "env_"]
      ])
      const store = yield* storeOf(SqliteStore.layerFromEnv).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(env))
      )
      yield* store.set(alice, slack, cid("c-env"))
      const rows = yield* onFile(
        filename,
        (sql) => sql<{ connection_id: string }>`SELECT connection_id FROM env_connections`
      )
      assert.deepStrictEqual(
        rows.map((r) => r.connection_id),
        ["c-env"]
      )
      const missing = yield* buildFailure(SqliteStore.layerFromEnv).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      )
      assert.include(String(missing), "ZAPIER_STORE_SQLITE_PATH")
    })
  )

  it.scoped("layerConfig takes any Config for each option", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "config.db")
      const store = yield* storeOf(
        SqliteStore.layerConfig({ filename: Config.string("DB_FILE"), tablePrefix: Config.succeed("cfg_") })
      ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DB_FILE", filename]]))))
      yield* store.set(alice, slack, cid("c-cfg"))
      const rows = yield* onFile(
        filename,
        (sql) => sql<{ connection_id: string }>`SELECT connection_id FROM cfg_connections`
      )
      assert.strictEqual(rows.length, 1)
    })
  )
})

describe("SqliteStore failures are StoreUnavailable, with what to do", () => {
  it.scoped("a file in a directory that does not exist", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = path.join(dir, "missing", "store.db")
      const error = yield* buildFailure(SqliteStore.layer({ filename }))
      assert.isTrue(error instanceof StoreUnavailable)
      const e = error as StoreUnavailable
      assert.strictEqual(e.operation, "open")
      assert.include(e.message, `${JSON.stringify(filename)} could not be opened`)
      assert.include(e.message, "check that the file's directory exists")
    })
  )

  it.scoped("a file that is not a database", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "not-a.db")
      fs.writeFileSync(filename, "this is not a database, just some text that is long enough to be read ".repeat(20))
      const error = yield* buildFailure(SqliteStore.layer({ filename }))
      assert.isTrue(error instanceof StoreUnavailable)
      assert.include((error as StoreUnavailable).message, "SQLITE_NOTADB")
      assert.include((error as StoreUnavailable).message, "not a valid database")
    })
  )

  it.scoped("an invalid table prefix", () =>
    Effect.gen(function* () {
      const error = yield* buildFailure(SqliteStore.layer({ filename: ":memory:", tablePrefix: "x; DROP TABLE y" }))
      assert.isTrue(error instanceof StoreUnavailable)
      const e = error as StoreUnavailable
      assert.strictEqual(e.operation, "configure")
      assert.include(e.message, "tablePrefix must be lowercase letters, digits and _")
      const upper = yield* buildFailure(SqliteStore.layer({ filename: ":memory:", tablePrefix: "Zap_" }))
      assert.strictEqual((upper as StoreUnavailable).operation, "configure")
    })
  )

  it.scoped("a migration that cannot run (a table of that name already exists)", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "taken.db")
      yield* onFile(filename, (sql) => sql`CREATE TABLE zz_connections (mine TEXT)`)
      const error = yield* buildFailure(SqliteStore.layer({ filename, tablePrefix: "zz_" }))
      assert.isTrue(error instanceof StoreUnavailable)
      const e = error as StoreUnavailable
      assert.strictEqual(e.operation, "migrate")
      assert.include(e.message, "SQLITE_ERROR")
      assert.include(e.message, `no other table's name starts with the prefix "zz_"`)
      // the failed migration was rolled back: the app's table is untouched and no migration is recorded
      const tables = yield* onFile(
        filename,
        (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
      )
      assert.deepStrictEqual(
        tables.map((t) => t.name),
        ["zz_connections", "zz_migrations"]
      )
      const recorded = yield* onFile(filename, (sql) => sql`SELECT * FROM zz_migrations`)
      assert.strictEqual(recorded.length, 0)
    })
  )

  it.scoped("a table that the store needs was dropped behind its back", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "dropped.db")
      const store = yield* storeOf(SqliteStore.layer({ filename }))
      yield* onFile(filename, (sql) => sql`DROP TABLE effect_zapier_connections`)
      const error = yield* Effect.flip(store.get(alice, slack))
      assert.isTrue(error instanceof StoreUnavailable)
      assert.strictEqual(error.operation, "get")
      assert.include(error.message, "SQLITE_ERROR")
      const setError = yield* Effect.flip(store.set(alice, slack, cid("c-1")))
      assert.strictEqual(setError.operation, "set")
    })
  )

  it.scoped("a row changed by hand into something invalid: the fields are named, the values never", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "tampered.db")
      yield* TestClock.setTime(t0)
      const store = yield* storeOf(SqliteStore.layer({ filename }))
      yield* store.set(alice, slack, cid("c-1"))
      yield* store.openAttempt(attempt(alice, slack, "secret-state-value", t0))
      yield* onFile(
        filename,
        (sql) => sql`UPDATE effect_zapier_connections SET connection_id = '   ', stored_at = 'soon'`
      )
      yield* onFile(
        filename,
        (sql) => sql`UPDATE effect_zapier_connect_attempts SET app_id = '', opened_at = 'x-canary'`
      )
      const error = yield* Effect.flip(store.get(alice, slack))
      assert.isTrue(error instanceof StoreUnavailable)
      assert.strictEqual(error.operation, "get")
      assert.include(error.message, "effect_zapier_connections does not have the expected shape")
      assert.include(error.message, "connection_id")
      assert.include(error.message, "stored_at")
      const attemptError = yield* Effect.flip(store.findAttempt("secret-state-value"))
      assert.include(attemptError.message, "app_id")
      for (const text of [error.message, attemptError.message, JSON.stringify(attemptError)]) {
        assert.notInclude(text, "soon")
        assert.notInclude(text, "x-canary")
        assert.notInclude(text, "secret-state-value")
      }
    })
  )
})
