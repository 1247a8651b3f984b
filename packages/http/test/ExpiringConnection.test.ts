/**
 * An expiring connection end to end over real loopback HTTP: the partner subscribes a callback URL to connection
 * webhooks on FakeZapierServer (the signing secret is answered once), mounts `ConnectionWebhooks.handler` with
 * `markExpiring` on its own NodeHttpServer, and the fake announces the connection's expiry with a signed delivery.
 * The stored connection ends marked (the SQLite and PostgreSQL stores' marks are tested by the sql package's
 * store suite), marking costs no Zapier request, a redelivery is deduplicated, `ensureConnection` offers the reconnect link (one connect token, only when asked), and the
 * secret never reaches a log line.
 */
import { createServer } from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer } from "@effect-zapier/testing"
import { Context, DateTime, Deferred, Effect, Layer, Option, Redacted } from "effect"
import { ConnectionWebhooks, ZapierHttp } from "../src/index.js"
import { clientOptions, logLayer, seed } from "./kit.js"

const { sample } = FakeZapier
const user = sample.user

/** The fake on 127.0.0.1, the live client pointed at it, EmbeddedActions over `store`. */
const stack = (store: Layer.Layer<ConnectionStore.ConnectionStore>) => {
  const Zapier = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) => ZapierHttp.layer(clientOptions(server)))
  )
  return EmbeddedActions.layer.pipe(
    Layer.provideMerge(Zapier),
    Layer.provideMerge(store),
    Layer.provideMerge(NodeHttpClient.layerUndici),
    Layer.provideMerge(FakeZapierServer.layer({ seed }))
  )
}

/** The partner's webhook receiver on 127.0.0.1: `handler` (known once the subscription's secret is) at `/hooks`. */
const receiver = (route: Deferred.Deferred<ReturnType<typeof ConnectionWebhooks.handler<never, never>>>) =>
  Effect.gen(function* () {
    const app = HttpRouter.empty.pipe(HttpRouter.post("/hooks", Effect.flatten(Deferred.await(route))))
    const context = yield* Layer.build(
      HttpServer.serve(app).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}/hooks`
  })

describe("an expiring connection, announced by a signed webhook from FakeZapierServer", () => {
  it.scopedLive("the stored connection is marked, a redelivery deduplicated, ensureConnection offers the link", () => {
    const lines: Array<string> = []
    return Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const actions = yield* EmbeddedActions.EmbeddedActions
      const connectionStore = yield* ConnectionStore.ConnectionStore
      const subscriptions = yield* ConnectionWebhooks.Subscriptions

      // The user connects through Connect UI (the link's callback, as the popup sends it).
      const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired: ${required._tag}`)
      const callback = yield* zapier.approveConnect(required.link!, { mode: "popup" })
      const connection = yield* actions.completeConnection(user, sample.slack, callback)

      // The partner's receiver, then the subscription (its secret answered once), then the route.
      const route = yield* Deferred.make<ReturnType<typeof ConnectionWebhooks.handler<never, never>>>()
      const url = yield* receiver(route)
      const subscription = yield* subscriptions.create(user, url)
      const secret = Option.getOrThrow(subscription.secret)
      assert.match(Redacted.value(secret), /^whsec_/)
      assert.deepStrictEqual(
        (yield* subscriptions.list(user)).map((s) => [s.callbackUrl, Option.isNone(s.secret)]),
        [[url, true]]
      )
      yield* Deferred.succeed(
        route,
        ConnectionWebhooks.handler({
          secret,
          onExpiring: (event) =>
            ConnectionWebhooks.markExpiring(event).pipe(
              Effect.provideService(ConnectionStore.ConnectionStore, connectionStore),
              Effect.orDie
            )
        })
      )

      const expiresAt = DateTime.add(yield* DateTime.now, { days: 7 })
      const before = (yield* zapier.ledger).requests.length
      const [delivery] = yield* zapier.scheduleConnectionExpiry(connection.id, expiresAt)
      assert.strictEqual(delivery!.status, 200)
      assert.strictEqual((yield* zapier.ledger).requests.length, before, "marking made no Zapier request")
      const stored = Option.getOrThrow(yield* connectionStore.get(user, sample.slack))
      assert.strictEqual(DateTime.toEpochMillis(stored.expiresAt!), DateTime.toEpochMillis(expiresAt))
      // Zapier retries deliveries: the same one again is acknowledged and not processed twice.
      assert.strictEqual(yield* delivery!.redeliver, 204)

      const tokens = () => Effect.map(zapier.ledger, (l) => l.exchanges.filter((e) => e.kind === "connect").length)
      const mints = yield* tokens()
      const plain = yield* actions.ensureConnection(user, sample.slack)
      assert.strictEqual(plain.id, connection.id)
      assert.strictEqual(DateTime.toEpochMillis(plain.expiring!.expiresAt), DateTime.toEpochMillis(expiresAt))
      assert.isUndefined(plain.expiring!.reconnect)
      assert.strictEqual(yield* tokens(), mints)
      const offered = yield* actions.ensureConnection(user, sample.slack, { reconnectIfExpiring: true })
      const link = offered.expiring!.reconnect!
      assert.strictEqual(new URL(link.url).searchParams.get("reconnect_id"), connection.id)
      assert.strictEqual(yield* tokens(), mints + 1)

      // The user reconnects: the mark is gone.
      const renewed = yield* zapier.approveConnect(link, { mode: "popup" })
      yield* actions.completeConnection(user, sample.slack, renewed)
      assert.isUndefined((yield* actions.ensureConnection(user, sample.slack)).expiring)

      const logged = lines.join("\n")
      assert.notInclude(logged, Redacted.value(secret))
      assert.notInclude(logged, Redacted.value(secret).slice("whsec_".length, "whsec_".length + 16))
    }).pipe(Effect.provide(stack(ConnectionStore.layerMemory)), Effect.provide(logLayer(lines)))
  })
})
