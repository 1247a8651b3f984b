/**
 * The README's setup, as written, builds (configuration from a map instead of the environment).
 */

import { NodeHttpClient } from "@effect/platform-node"
import { assert, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ZapierHttp } from "../src/index.js"
import { CLIENT_SECRET, generateKeys } from "./support.js"

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
