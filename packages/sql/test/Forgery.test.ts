/**
 * The forged-callback suite (see Forgery.ts) on every store: core's memory store, SQLite (a temp file) and
 * PostgreSQL (a schema of its own), then the figures: forged callbacks tried and accepted, canary checks and leaks.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, assert, describe } from "@effect/vitest"
import * as ConnectionStore from "@effect-zapier/core/ConnectionStore"
import * as PgStore from "@effect-zapier/sql/PgStore"
import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
import { FakeZapier } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { figures, forgerySuite, victim } from "./Forgery.js"
import { isolatedSchema, skip, urlFor } from "./Pg.js"

const victimAndSlack = [victim, FakeZapier.sample.slack] as const

const tables = ["effect_zapier_connections", "effect_zapier_connect_attempts"]

/** Every row of the store's tables, as JSON text. */
const dump = (sql: SqlClient.SqlClient) =>
  Effect.map(
    Effect.forEach(tables, (table) => sql`SELECT * FROM ${sql(table)}`),
    (results) => JSON.stringify(results)
  ).pipe(Effect.orDie)

forgerySuite(
  "the memory store",
  Effect.gen(function* () {
    const store = yield* ConnectionStore.makeMemory
    // The memory store has no rows to read: its whole state is what the service answers about the attempts.
    return {
      layer: Layer.succeed(ConnectionStore.ConnectionStore, store),
      rows: Effect.map(Effect.all([store.latestAttempt(...victimAndSlack), store.get(...victimAndSlack)]), (state) =>
        JSON.stringify(state)
      ).pipe(Effect.orDie)
    }
  })
)

forgerySuite(
  "SqliteStore",
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-zapier-forgery-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const filename = path.join(dir, "store.db")
    return {
      layer: SqliteStore.layer({ filename }),
      rows: Effect.flatMap(SqlClient.SqlClient, dump).pipe(
        Effect.provide(SqliteClient.layer({ filename })),
        Effect.orDie
      )
    }
  })
)

describe.skipIf(skip)("PostgreSQL", () => {
  forgerySuite(
    "PgStore",
    Effect.gen(function* () {
      const schema = yield* isolatedSchema
      return {
        layer: PgStore.layer({ url: urlFor(schema), maxConnections: 3 }),
        rows: Effect.flatMap(SqlClient.SqlClient, dump).pipe(
          Effect.provide(
            Layer.scopedContext(
              Effect.map(PgClient.make({ url: urlFor(schema) }), (client) => SqlClient.SqlClient.context(client))
            ).pipe(Layer.provide(Reactivity.layer))
          ),
          Effect.orDie
        )
      }
    })
  )
})

afterAll(() => {
  for (const f of figures) {
    console.info(
      `forged callbacks on ${f.store}: ${f.forgedTried} tried, ${f.forgedAccepted} accepted; ` +
        `${f.canaryChecks} canary checks, ${f.leaks} leaked`
    )
  }
  assert.isTrue(figures.every((f) => f.forgedAccepted === 0 && f.leaks === 0))
})
