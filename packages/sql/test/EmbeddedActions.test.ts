/**
 * Core's connect flow (`ensureConnection` -> Connect UI -> `completeConnection`) on the durable stores, with
 * FakeZapier as Zapier: a callback survives a restart of the backend, cannot be replayed after one, two backends
 * of a fleet racing on one callback complete it exactly once, and a connection marked expiring (a connection
 * webhook's notice) is offered for reconnection by another backend, expires at its time, and a reconnect clears it.
 */

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore } from "@effect-zapier/core/ConnectionStore"
import * as EmbeddedActions from "@effect-zapier/core/EmbeddedActions"
import { ConnectFailed, ConnectionRequired } from "@effect-zapier/core/Errors"
import * as PgStore from "@effect-zapier/sql/PgStore"
import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
import { FakeZapier } from "@effect-zapier/testing"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { isolatedSchema, skip, urlFor } from "./Pg.js"

const user = FakeZapier.sample.user
const slack = FakeZapier.sample.slack

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-zapier-flow-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** One Zapier for the whole test; `backend(store)` is a partner backend on that store, built in the current scope. */
const world = Effect.gen(function* () {
  const zapier = yield* Layer.build(FakeZapier.layer(FakeZapier.sampleSeed))
  const backend = <E>(store: Layer.Layer<ConnectionStore, E>) =>
    Effect.map(
      Layer.build(EmbeddedActions.layer.pipe(Layer.provide(store), Layer.provide(Layer.succeedContext(zapier)))),
      (ctx) => Context.get(ctx, EmbeddedActions.EmbeddedActions)
    )
  return { control: Context.get(zapier, FakeZapier.FakeZapier), backend }
})

/** `ensureConnection` on a user without one: the Connect link it hands out. */
const connectLink = (backend: EmbeddedActions.Service) =>
  Effect.gen(function* () {
    const result = yield* Effect.either(backend.ensureConnection(user, slack))
    if (Either.isRight(result)) return assert.fail("expected ConnectionRequired")
    const error = result.left
    assert.isTrue(error instanceof ConnectionRequired, String(error))
    if (!(error instanceof ConnectionRequired) || error.link === undefined) return assert.fail("no link")
    return error.link
  })

/**
 * Connected through Connect UI on one backend; the expiry notice is recorded in the store (as the webhook handler
 * does); a second backend on the same store surfaces it and mints the reconnect link when asked; from `expiresAt`
 * on the connection counts as expired; the reconnect clears the mark.
 */
const expiringFlow = <E>(store: Layer.Layer<ConnectionStore, E>) =>
  Effect.gen(function* () {
    const { control, backend } = yield* world
    const first = yield* backend(store)
    const connection = yield* first.completeConnection(
      user,
      slack,
      yield* control.approveConnect(yield* connectLink(first), { mode: "popup" })
    )
    const records = Context.get(yield* Layer.build(store), ConnectionStore)
    const expiresAt = DateTime.add(yield* DateTime.now, { hours: 2 })
    assert.strictEqual(yield* records.markExpiring(connection.id, expiresAt), 1)

    const second = yield* backend(store)
    const offered = yield* second.ensureConnection(user, slack, { reconnectIfExpiring: true })
    assert.strictEqual(offered.id, connection.id)
    assert.strictEqual(DateTime.toEpochMillis(offered.expiring!.expiresAt), DateTime.toEpochMillis(expiresAt))
    assert.strictEqual(offered.expiring!.reconnect!.reconnect, connection.id)

    yield* TestClock.adjust("2 hours")
    const link = yield* connectLink(second)
    assert.strictEqual(link.reconnect, connection.id)
    yield* first.completeConnection(user, slack, yield* control.approveConnect(link, { mode: "popup" }))
    assert.isUndefined(Option.getOrThrow(yield* records.get(user, slack)).expiresAt)
    assert.isUndefined((yield* second.ensureConnection(user, slack)).expiring)
  })

describe("the connect flow on SqliteStore", () => {
  it.scoped("a connection marked expiring: offered for reconnection, expired at its time, renewed", () =>
    Effect.flatMap(tempDir, (dir) => expiringFlow(SqliteStore.layer({ filename: path.join(dir, "expiring.db") })))
  )

  it.scoped("a callback is completed after a restart, then refused as a replay after another", () =>
    Effect.gen(function* () {
      const filename = path.join(yield* tempDir, "flow.db")
      const { control, backend } = yield* world
      const store = SqliteStore.layer({ filename })

      // backend #1 hands out the link, then stops before the user comes back
      const link = yield* Effect.scoped(Effect.flatMap(backend(store), connectLink))
      const callback = yield* control.approveConnect(link)

      // backend #2 (same file) receives the callback
      const connection = yield* Effect.scoped(
        Effect.gen(function* () {
          const second = yield* backend(store)
          return yield* second.completeConnection(user, slack, callback)
        })
      )
      assert.deepStrictEqual(
        (yield* control.connections(user, slack)).map((c) => c.id),
        [connection.id]
      )

      // backend #3: the stored connection is used, and the same callback is a replay
      const third = yield* backend(store)
      assert.strictEqual((yield* third.ensureConnection(user, slack)).id, connection.id)
      const replay = yield* Effect.flip(third.completeConnection(user, slack, callback))
      assert.isTrue(replay instanceof ConnectFailed)
      assert.strictEqual((replay as ConnectFailed).reason, "replay")
    })
  )
})

describe.skipIf(skip)("the connect flow on PgStore", () => {
  it.scoped("a connection marked expiring: offered for reconnection, expired at its time, renewed", () =>
    Effect.flatMap(isolatedSchema, (schema) => expiringFlow(PgStore.layer({ url: urlFor(schema), maxConnections: 3 })))
  )

  it.scoped("two backends racing on one callback: exactly one completes it, the other sees a replay", () =>
    Effect.gen(function* () {
      const schema = yield* isolatedSchema
      const { control, backend } = yield* world
      const one = yield* backend(PgStore.layer({ url: urlFor(schema), maxConnections: 3 }))
      const two = yield* backend(PgStore.layer({ url: urlFor(schema), maxConnections: 3 }))

      const link = yield* connectLink(one)
      const callback = yield* control.approveConnect(link, { mode: "popup" })
      const results = yield* Effect.all(
        [one, two, one, two].map((b) => Effect.either(b.completeConnection(user, slack, callback))),
        { concurrency: "unbounded" }
      )
      const completed = results.filter(Either.isRight)
      assert.strictEqual(completed.length, 1)
      const refused = results
        .filter(Either.isLeft)
        .map((r) => (r.left instanceof ConnectFailed ? r.left.reason : r.left))
      assert.deepStrictEqual(refused, ["replay", "replay", "replay"])
      // either backend now uses the stored connection without a new link
      assert.strictEqual((yield* two.ensureConnection(user, slack)).id, completed[0].right.id)
      assert.strictEqual((yield* one.ensureConnection(user, slack)).id, completed[0].right.id)
    })
  )
})
