/**
 * `FakeZapier.approveConnectInBrowser` / `denyConnectInBrowser` give the URL Connect UI sends the browser to; a
 * test follows it over real loopback HTTP into `ConnectCallback.handler` on the partner's server, with nothing
 * rebuilt (the partner's `app=` and the library's `connect_attempt` ride in it already).
 */

import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, Domain } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { ConnectCallback } from "../src/index.js"
import {
  assertNoLeaks,
  connectLink,
  type LoopbackServices,
  logCapture,
  loopbackStack,
  newCapture,
  visit
} from "./kit.js"

const { sample } = FakeZapier
const NOW = Date.parse("2026-03-01T12:00:00Z")
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })

class NotSignedIn extends Data.TaggedError("NotSignedIn")<{}> {}

const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/zapier/callback",
    ConnectCallback.handler({
      resolveUser: (request) =>
        request.cookies.session === "sess-alice" ? Effect.succeed(alice) : Effect.fail(new NotSignedIn()),
      onSuccess: (connection, context) =>
        HttpServerResponse.redirect(`/connected?connection=${connection.id}&app=${context.app}`, { status: 303 }),
      onFailure: (error) =>
        HttpServerResponse.redirect(
          `/connect-failed?reason=${error._tag === "ConnectFailed" ? error.reason : error._tag}`,
          { status: 303 }
        )
    })
  )
)

/** Runs `body` against the partner's server on 127.0.0.1 over the loopback stack; then checks for leaks. */
const withPartner = <A, E>(body: Effect.Effect<A, E, LoopbackServices | HttpServer.HttpServer>) => {
  const capture = newCapture()
  return TestClock.setTime(NOW).pipe(
    Effect.zipRight(body),
    Effect.provide(
      HttpServer.serve(routes).pipe(
        Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })),
        Layer.provideMerge(loopbackStack(capture))
      )
    ),
    Effect.provide(logCapture(capture)),
    Effect.tap(() => Effect.sync(() => assertNoLeaks(capture)))
  ) as Effect.Effect<A, E | unknown, never>
}

/** A Connect link for alice whose redirect_uri is the partner's callback route, with the partner's `app=`. */
const aliceLink = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const callback = `http://127.0.0.1:${port}/zapier/callback?app=${sample.slack}`
  return (yield* connectLink(alice, sample.slack, callback)).link
})

describe("FakeZapier's Connect UI, followed by a browser over HTTP", () => {
  it.effect("approveConnectInBrowser: its redirectUrl, GET on the partner's server, completes the connection", () =>
    withPartner(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const link = yield* aliceLink
        const browser = yield* zapier.approveConnectInBrowser(link)
        assert.isDefined(browser.redirectUrl)
        const url = new URL(browser.redirectUrl!)
        assert.strictEqual(url.pathname, "/zapier/callback")
        assert.strictEqual(url.searchParams.get("app"), sample.slack)
        assert.isNotNull(url.searchParams.get("connect_attempt"))
        assert.strictEqual(url.searchParams.get("state"), link.state)
        // The redirect carries the same callback that approveConnect returns.
        assert.ok("authentication_id" in browser.callback)
        assert.strictEqual(url.searchParams.get("authentication_id"), browser.callback.authentication_id)

        const answer = yield* visit(browser.redirectUrl!, "sess-alice")
        assert.strictEqual(answer.status, 303)
        const landed = new URL(answer.location ?? "", "http://partner")
        assert.strictEqual(landed.pathname, "/connected")
        assert.strictEqual(landed.searchParams.get("connection"), browser.callback.authentication_id)
        const stored = yield* Effect.flatMap(ConnectionStore.ConnectionStore, (store) => store.get(alice, sample.slack))
        assert.strictEqual(Option.getOrUndefined(stored)?.connectionId, browser.callback.authentication_id)
      })
    )
  )

  it.effect("denyConnectInBrowser: its redirectUrl reaches the handler as a denial; nothing is stored", () =>
    withPartner(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const browser = yield* zapier.denyConnectInBrowser(yield* aliceLink)
        const url = new URL(browser.redirectUrl!)
        assert.strictEqual(url.searchParams.get("error"), "server_error")
        assert.strictEqual(url.searchParams.get("app"), sample.slack)
        const answer = yield* visit(browser.redirectUrl!, "sess-alice")
        assert.strictEqual(answer.status, 303)
        assert.strictEqual(new URL(answer.location ?? "", "http://partner").searchParams.get("reason"), "denied")
        const stored = yield* Effect.flatMap(ConnectionStore.ConnectionStore, (store) => store.get(alice, sample.slack))
        assert.isTrue(Option.isNone(stored))
      })
    )
  )

  it.effect("popup mode: no redirect URL, the callback is the popup message", () =>
    withPartner(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const browser = yield* zapier.approveConnectInBrowser(yield* aliceLink, { mode: "popup" })
        assert.isUndefined(browser.redirectUrl)
        assert.strictEqual("type" in browser.callback ? browser.callback.type : undefined, "authenticationSuccess")
      })
    )
  )
})
