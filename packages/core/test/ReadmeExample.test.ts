// The README's example, verbatim but for the last line (run on the TestClock here).

import { assert, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Effect, Fiber, Layer, TestClock } from "effect"

const { sample } = FakeZapier // a sample user and a Slack-like app

const program = Effect.gen(function* () {
  const actions = yield* EmbeddedActions.EmbeddedActions
  const zapier = yield* FakeZapier.FakeZapier // the fake's control side: acts as the end user
  yield* actions.ensureConnection(sample.user, sample.slack).pipe(
    Effect.catchTag("ConnectionRequired", (required) =>
      zapier.approveConnect(required.link!).pipe(
        // the user approves in Connect UI
        Effect.flatMap((callback) => actions.completeConnection(sample.user, sample.slack, callback))
      )
    )
  )
  return yield* actions.run({
    user: sample.user,
    app: sample.slack,
    action: sample.sendChannelMessage,
    inputs: { channel: "#general", text: "Hello from effect-zapier" }
  })
})

const TestZapier = EmbeddedActions.layer.pipe(
  Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)),
  Layer.provide(ConnectionStore.layerMemory)
)

it.effect("the README example runs the five steps against FakeZapier.layer", () =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(program)
    yield* TestClock.adjust("1 minute")
    const result = yield* Fiber.join(fiber)
    assert.deepStrictEqual(result.results, [
      { ok: true, channel: "#general", text: "Hello from effect-zapier", ts: "1711900000.000100" }
    ])
    const ledger = yield* (yield* FakeZapier.FakeZapier).ledger
    assert.strictEqual(ledger.runs.length, 1)
    assert.strictEqual(ledger.connects.filter((c) => c.outcome === "approved").length, 1)
  }).pipe(Effect.provide(TestZapier))
)
