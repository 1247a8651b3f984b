// The README's examples, run as they are written there.

import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { FakeZapier, FakeZapierServer, PartnerKey } from "../src/index.js"

const { sample } = FakeZapier // ids and keys of FakeZapier.sampleSeed
const TestLayer = EmbeddedActions.layer.pipe(
  Layer.provideMerge(FakeZapier.layer(FakeZapier.sampleSeed)), // fresh model per build
  Layer.provide(ConnectionStore.layerMemory)
)
const request = {
  user: sample.user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hi" }
}

describe("README", () => {
  it.effect("connects, then sends a Slack message", () =>
    Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const actions = yield* EmbeddedActions.EmbeddedActions
      const callback = yield* actions.ensureConnection(sample.user, sample.slack).pipe(
        Effect.andThen(Effect.dieMessage("expected no connection yet")),
        Effect.catchTag("ConnectionRequired", (e) => zapier.approveConnect(e.link!)) // what a browser would deliver
      )
      yield* actions.completeConnection(sample.user, sample.slack, callback)
      const run = yield* Effect.fork(actions.run(request))
      yield* TestClock.adjust("5 seconds") // send_channel_message takes 2 s on the model's clock
      assert.strictEqual((yield* Fiber.join(run)).results.length, 1)
      assert.strictEqual(FakeZapier.lookupsOf(yield* zapier.ledger, sample.user).length, 1)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("starts the server with a registered partner key", () =>
    Effect.gen(function* () {
      const key = yield* PartnerKey.generate() // ES256 key pair; only the public half goes to the fake
      const server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
      const seen = yield* Effect.gen(function* () {
        const { url, tokenUrl, connectUrl } = yield* FakeZapierServer.FakeZapierServer // http://127.0.0.1:<port>
        const zapier = yield* FakeZapier.FakeZapier // the same control tag as in memory
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
        assert.strictEqual(tokenUrl, `${url}/oauth/token`)
        assert.strictEqual(connectUrl, url)
        assert.deepStrictEqual(FakeZapier.requestsByEndpoint(yield* zapier.ledger), {})
        return zapier.connectUrl
      }).pipe(Effect.provide(server))
      assert.match(seen, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.strictEqual(String(key.privateKeyPem), "<redacted>")
    })
  )
})
