/**
 * `ZapierHttp.layerFromEnv` pointed at `FakeZapierServer` through `FakeZapierServer.configProvider`: the program's
 * wiring is the production one, only the variables come from the fake.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, TokenExchange } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ZapierHttp } from "../src/index.js"

const { sample } = FakeZapier

describe("FakeZapierServer.configProvider", () => {
  it.live("feeds ZapierHttp.layerFromEnv the fake's URLs and the sample partner's credentials", () =>
    Effect.gen(function* () {
      const key = yield* PartnerKey.generate()
      const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
      const FakeEnv = Layer.unwrapEffect(
        Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
          Layer.setConfigProvider(FakeZapierServer.configProvider(server, key, { ZAPIER_MAX_ATTEMPTS: "1" }))
        )
      )
      const Live = ZapierHttp.layerFromEnv.pipe(
        Layer.provide(FakeEnv),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provideMerge(Server)
      )
      yield* Effect.gen(function* () {
        const token = yield* Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(sample.user))
        assert.isTrue(token.scope.length > 0)
        const action = yield* Effect.flatMap(ActionCatalog.ActionCatalog, (c) =>
          c.resolve(sample.user, sample.slack, sample.sendChannelMessage)
        )
        assert.strictEqual(action.key, sample.sendChannelMessage)
        const ledger = yield* Effect.flatMap(FakeZapier.FakeZapier, (z) => z.ledger)
        assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)[FakeZapier.Endpoint.actions], 1)
      }).pipe(Effect.provide(Live))
    })
  )
})
