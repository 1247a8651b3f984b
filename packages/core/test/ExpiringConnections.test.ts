/**
 * Connections whose expiry Zapier announced (`ConnectionStore.markExpiring`, from a connection webhook): usable
 * until `expiresAt` and surfaced as expiring (a reconnect link only when asked for: one connect token), expired from
 * then on (the reconnect path), and cleared by a reconnect. Marking costs no Zapier request.
 */
import { assert, describe, it } from "@effect/vitest"
import { FakeZapier } from "@effect-zapier/testing"
import { DateTime, Duration, Effect, Fiber, Option, TestClock } from "effect"
import { services, TestLayer } from "./connectionFixtures.js"

const { sample } = FakeZapier
const user = sample.user

const counts = Effect.map(FakeZapier.FakeZapier, (z) => z.ledger).pipe(
  Effect.flatten,
  Effect.map((l) => ({
    requests: l.requests.length,
    connectTokens: l.exchanges.filter((e) => e.kind === "connect").length
  }))
)

/** A stored, valid Slack connection of the user, marked expiring in `inHours` hours. */
const expiringIn = (inHours: number) =>
  Effect.gen(function* () {
    const { store, zapier } = yield* services
    const connection = yield* zapier.addConnection(user, sample.slack)
    yield* store.set(user, sample.slack, connection.id)
    const expiresAt = DateTime.add(yield* DateTime.now, { hours: inHours })
    const before = yield* counts
    assert.strictEqual(yield* store.markExpiring(connection.id, expiresAt), 1)
    assert.deepStrictEqual(yield* counts, before, "marking costs no Zapier request")
    return { connection, expiresAt }
  })

describe("expiring connections", () => {
  it.effect("usable until expiresAt and surfaced; a reconnect link only when asked for (one connect token)", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const { connection, expiresAt } = yield* expiringIn(24)

      const before = yield* counts
      const plain = yield* actions.ensureConnection(user, sample.slack)
      assert.strictEqual(plain.id, connection.id)
      assert.strictEqual(DateTime.toEpochMillis(plain.expiring!.expiresAt), DateTime.toEpochMillis(expiresAt))
      assert.isUndefined(plain.expiring!.reconnect)
      const afterPlain = yield* counts
      assert.strictEqual(afterPlain.connectTokens, before.connectTokens, "no link minted unless asked")

      const offered = yield* actions.ensureConnection(user, sample.slack, { reconnectIfExpiring: true })
      const link = offered.expiring!.reconnect!
      assert.strictEqual(link.reconnect, connection.id)
      assert.strictEqual(new URL(link.url).searchParams.get("reconnect_id"), connection.id)
      assert.strictEqual((yield* counts).connectTokens, afterPlain.connectTokens + 1)

      // Runs go on with it until then.
      const fiber = yield* Effect.fork(
        actions.run({
          user,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#general", text: "still fine" }
        })
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      const { zapier } = yield* services
      assert.strictEqual((yield* zapier.ledger).runs[0]!.connection, connection.id)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect(
    "from expiresAt on it counts as expired: ConnectionRequired(expired) with a reconnect link; a reconnect clears the mark",
    () =>
      Effect.gen(function* () {
        const { actions, store, zapier } = yield* services
        const { connection } = yield* expiringIn(2)
        yield* TestClock.adjust(Duration.hours(2))
        // Zapier still lists it valid; the announced expiry has come all the same.
        const error = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
        if (error._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${error._tag}`)
        assert.strictEqual(error.reason, "expired")
        assert.strictEqual(error.link!.reconnect, connection.id)
        // A run is refused the same way, before anything is created.
        const refused = yield* Effect.flip(
          actions.start({
            user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs: { channel: "#general", text: "x" }
          })
        )
        assert.strictEqual(refused._tag, "ConnectionRequired")
        assert.strictEqual((yield* zapier.ledger).runs.length, 0)

        const callback = yield* zapier.approveConnect(error.link!)
        const reconnected = yield* actions.completeConnection(user, sample.slack, callback)
        assert.strictEqual(reconnected.id, connection.id)
        assert.isUndefined(Option.getOrThrow(yield* store.get(user, sample.slack)).expiresAt)
        const again = yield* actions.ensureConnection(user, sample.slack)
        assert.strictEqual(again.id, connection.id)
        assert.isUndefined(again.expiring)
      }).pipe(Effect.provide(TestLayer))
  )

  it.effect("past expiresAt, another valid connection of the user is used (and stored, unmarked)", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const { connection } = yield* expiringIn(1)
      const newer = yield* zapier.addConnection(user, sample.slack)
      // Before the expiry the stored one is kept, even with a newer one listed.
      assert.strictEqual((yield* actions.ensureConnection(user, sample.slack)).id, connection.id)
      yield* TestClock.adjust(Duration.hours(1))
      const chosen = yield* actions.ensureConnection(user, sample.slack)
      assert.strictEqual(chosen.id, newer.id)
      assert.isUndefined(chosen.expiring)
      const stored = Option.getOrThrow(yield* store.get(user, sample.slack))
      assert.strictEqual(stored.connectionId, newer.id)
      assert.isUndefined(stored.expiresAt)
    }).pipe(Effect.provide(TestLayer))
  )
})
