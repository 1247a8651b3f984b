/**
 * The partner's keys, and the library's live client (`ZapierHttp` over `NodeHttpClient.layerUndici`) pointed at a
 * fake server.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, PartnerKey } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Child from "./child.js"
import type * as Protocol from "./protocol.js"

export interface Keys {
  readonly es256: PartnerKey.PartnerKey
  readonly rs256: PartnerKey.PartnerKey
}

export const generateKeys: Effect.Effect<Keys> = Effect.all({
  es256: PartnerKey.generate({ alg: "ES256", kid: "bench-es256" }),
  rs256: PartnerKey.generate({ alg: "RS256", kid: "bench-rs256" })
})

export const publicKeys = (keys: Keys): ReadonlyArray<Protocol.PublicKey> =>
  [keys.es256, keys.rs256].map((k) => ({ kid: k.kid, alg: k.alg, publicKeyPem: k.publicKeyPem }))

/** The four live services against `server`, signing with `key`; the client's rate limiting off unless `extra` sets it. */
export const zapier = (server: Child.FakeServer, key: PartnerKey.PartnerKey, extra: Partial<ZapierHttp.Options> = {}) =>
  ZapierHttp.layer({
    clientId: FakeZapier.sample.clientId,
    clientSecret: Redacted.make(FakeZapier.sample.clientSecret),
    signingKey: key.privateKeyPem,
    keyId: key.kid,
    algorithm: key.alg,
    issuer: FakeZapier.sample.issuer,
    apiUrl: server.apiUrl,
    tokenUrl: server.tokenUrl,
    connectUrl: server.connectUrl,
    allowInsecureHttp: true,
    rateLimit: false,
    ...extra
  }).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** `EmbeddedActions` over the live services, with a memory `ConnectionStore`. */
export const embedded = (
  server: Child.FakeServer,
  key: PartnerKey.PartnerKey,
  extra: Partial<ZapierHttp.Options> = {}
) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(zapier(server, key, extra)),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )
