/**
 * The catalog every scenario runs on: one app with authentication and one WRITE action that succeeds at once
 * (`RunScript.succeed(0)`), and `users` end users each with one connection to it. The polling scenario scripts the
 * durations it needs per run with `scriptRuns`.
 */
import { ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as TestContext from "effect/TestContext"
import type * as Protocol from "./protocol.js"

export const app = Domain.AppId.make("bench")
export const action = Domain.ActionKey.make("work")

export const user = (i: number): Domain.EndUser => Domain.EndUser.make({ userId: `u-${i}`, tenantId: "bench" })
export const connectionOf = (i: number): Domain.ConnectionId => Domain.ConnectionId.make(`conn-${i}`)

/** The catalog, `users` end users with a connection each, and the partner's public keys. */
export const seed = (users: number, keys: ReadonlyArray<Protocol.PublicKey> = []): FakeZapier.Seed => ({
  partner: {
    clientId: FakeZapier.sample.clientId,
    clientSecret: FakeZapier.sample.clientSecret,
    issuer: FakeZapier.sample.issuer,
    keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, publicKey: k.publicKeyPem }))
  },
  apps: [
    {
      id: app,
      title: "Bench",
      service: "BenchAPI",
      actions: [
        {
          key: action,
          actionType: "WRITE",
          title: "Work",
          run: FakeZapier.RunScript.succeed(0, [{ ok: true }])
        }
      ]
    }
  ],
  users: Array.from({ length: users }, (_, i) => ({
    user: user(i),
    connections: [{ app, id: connectionOf(i), title: `Bench ${i}` }]
  }))
})

/** The library's program over the in-memory fake (`FakeZapier.layer`), with a memory `ConnectionStore`. */
export const inMemory = (users: number) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(FakeZapier.layer(seed(users))),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )

/** `TestClock` and the other test services, without the default logger (as `it.effect` has them). */
export const testContext = TestContext.TestContext.pipe(Layer.provide(Logger.remove(Logger.defaultLogger)))
