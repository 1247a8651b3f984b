/**
 * `ensureConnection` with `mintLink: false`: whether the user must connect, without minting a Connect link (no
 * connect token, no attempt opened), for a missing, an expired and a lapsed (announced expiry passed) connection;
 * without it, one connect token and a link each, as before.
 */
import { assert, describe, it } from "@effect/vitest"
import type { EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { DateTime, Duration, Effect, TestClock } from "effect"
import { services, TestLayer } from "./connectionFixtures.js"

const { sample } = FakeZapier
const user = sample.user

const connectTokens = Effect.map(FakeZapier.FakeZapier, (z) => z.ledger).pipe(
  Effect.flatten,
  Effect.map((l) => l.exchanges.filter((e) => e.kind === "connect").length)
)

/** ensureConnection's failure, which must be ConnectionRequired, and the connect tokens it minted. */
const required = (options?: EmbeddedActions.EnsureOptions) =>
  Effect.gen(function* () {
    const { actions } = yield* services
    const before = yield* connectTokens
    const error = yield* Effect.flip(actions.ensureConnection(user, sample.slack, options))
    if (error._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${error._tag}`)
    return { error, minted: (yield* connectTokens) - before }
  })

/** The three ways a user has no valid Slack connection. */
const setups = {
  missing: Effect.void,
  expired: Effect.gen(function* () {
    const { store, zapier } = yield* services
    const connection = yield* zapier.addConnection(user, sample.slack)
    yield* store.set(user, sample.slack, connection.id)
    yield* zapier.expireConnection(connection.id)
  }),
  lapsed: Effect.gen(function* () {
    const { store, zapier } = yield* services
    const connection = yield* zapier.addConnection(user, sample.slack)
    yield* store.set(user, sample.slack, connection.id)
    yield* store.markExpiring(connection.id, DateTime.add(yield* DateTime.now, { hours: 1 }))
    yield* TestClock.adjust(Duration.hours(1))
  })
}

describe("ensureConnection with mintLink: false", () => {
  for (const [name, setup] of Object.entries(setups)) {
    const reason = name === "missing" ? "missing" : "expired"
    it.effect(
      `${name}: ConnectionRequired(${reason}) without a link and no connect token; by default one and a link`,
      () =>
        Effect.gen(function* () {
          yield* setup
          for (let i = 0; i < 3; i++) {
            const { error, minted } = yield* required({ mintLink: false, redirectUri: "https://partner.example/cb" })
            assert.strictEqual(error.reason, reason)
            assert.isUndefined(error.link)
            assert.strictEqual(minted, 0, "no connect token without a link")
          }
          const { error, minted } = yield* required()
          assert.strictEqual(error.reason, reason)
          assert.isDefined(error.link)
          assert.strictEqual(minted, 1)
          // The link minted by default is the one Connect answers: its attempt was opened (and none before it).
          const { actions, zapier } = yield* services
          const connection = yield* actions.completeConnection(
            user,
            sample.slack,
            yield* zapier.approveConnect(error.link!)
          )
          assert.strictEqual(
            (yield* actions.ensureConnection(user, sample.slack, { mintLink: false })).id,
            connection.id
          )
        }).pipe(Effect.provide(TestLayer))
    )
  }

  it.effect("a valid connection is returned as without it, and an expiring one's reconnect link still minted", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const connection = yield* zapier.addConnection(user, sample.slack)
      assert.strictEqual((yield* actions.ensureConnection(user, sample.slack, { mintLink: false })).id, connection.id)
      yield* store.markExpiring(connection.id, DateTime.add(yield* DateTime.now, { hours: 24 }))
      const before = yield* connectTokens
      const expiring = yield* actions.ensureConnection(user, sample.slack, {
        mintLink: false,
        reconnectIfExpiring: true
      })
      assert.strictEqual(expiring.expiring!.reconnect!.reconnect, connection.id)
      assert.strictEqual((yield* connectTokens) - before, 1)
    }).pipe(Effect.provide(TestLayer))
  )
})
