/**
 * The README's setup, as written, builds (configuration from a map instead of the environment).
 */

import { NodeHttpClient } from "@effect/platform-node"
import { assert, it } from "@effect/vitest"
import { ActionRuns, ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Agent } from "undici"
import { RateLimiterRedis, ZapierHttp } from "../src/index.js"
import { CLIENT_SECRET, generateKeys } from "./kit.js"

const keys = await generateKeys("ES256")

const ZapierLive = EmbeddedActions.layer.pipe(
  Layer.provide([ZapierHttp.layerFromEnv, ConnectionStore.layerMemory]),
  Layer.provide(NodeHttpClient.layerUndici)
)

it.effect("the README setup builds from ZAPIER_* variables", () =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    assert.isFunction(actions.run)
  }).pipe(
    Effect.provide(ZapierLive),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map([
          ["ZAPIER_CLIENT_ID", "partner-client"],
          ["ZAPIER_CLIENT_SECRET", CLIENT_SECRET],
          ["ZAPIER_SIGNING_KEY", keys.pem],
          ["ZAPIER_KEY_ID", "key-2026-03"],
          ["ZAPIER_JWT_ISSUER", "https://partner.example"]
        ])
      )
    )
  )
)

it.effect("the README's rate-budget and dispatcher snippets build", () => {
  const redisUrl = process.env.ZAPIER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
  // As in the README (Redis unreachable: the limiter falls back to memory and says so).
  const Http = NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
    Layer.provide(
      Layer.scoped(
        NodeHttpClient.Dispatcher,
        Effect.acquireRelease(
          Effect.sync(() => new Agent({ keepAliveTimeout: 4_000, connectTimeout: 10_000 })),
          (agent) => Effect.promise(() => agent.destroy())
        )
      )
    )
  )
  const ZapierShared = ZapierHttp.layerFromEnv.pipe(
    Layer.provide(RateLimiterRedis.layer({ redis: { url: Redacted.make(redisUrl) }, limit: 150, window: "1 minute" })),
    Layer.provide(Http)
  )
  return Effect.gen(function* () {
    const runs = yield* ActionRuns.ActionRuns
    assert.isFunction(runs.create)
  }).pipe(
    Effect.provide(ZapierShared),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map([
          ["ZAPIER_CLIENT_ID", "partner-client"],
          ["ZAPIER_CLIENT_SECRET", CLIENT_SECRET],
          ["ZAPIER_SIGNING_KEY", keys.pem],
          ["ZAPIER_KEY_ID", "key-2026-03"],
          ["ZAPIER_JWT_ISSUER", "https://partner.example"]
        ])
      )
    )
  )
})
