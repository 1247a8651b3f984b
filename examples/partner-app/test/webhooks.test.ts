/**
 * Connection-expiry webhooks in the partner app, over real loopback HTTP on a fake Zapier: the partner subscribes
 * the app's route once (the fake answers the signing secret once) and starts the app with that secret; the fake
 * announces the user's connection's expiry with a signed delivery; the app marks it (no Zapier request), the
 * connection endpoint reports it expiring with a reconnect link, and reconnecting through that link clears it. A
 * forged, unsigned or cross-site delivery is refused and marks nothing; the secret reaches no log line, span or
 * answer.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConnectionWebhooks } from "@effect-zapier/http"
import { FakeZapier } from "@effect-zapier/testing"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Context, DateTime, Effect, Logger, Option, Redacted } from "effect"
import * as Telemetry from "../src/Telemetry.js"
import { webhookPath } from "../src/Webhooks.js"
import { client, connectApp, dataDir, fakeZapier, freePort, options, partnerApp } from "./fixtures.js"

type Body = Readonly<Record<string, unknown>>
const body = (answer: { readonly body: unknown }) => answer.body as Body

/** A raw POST to the app (no cookie jar), as Zapier or an attacker would send it. */
const post = (url: string, headers: Record<string, string>, text: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers, body: text, redirect: "manual" })
    return { status: response.status, text: await response.text() }
  })

describe("connection-expiry webhooks", () => {
  it.scopedLive(
    "a signed expiry notice marks the connection (0 Zapier requests); the page's endpoint offers a reconnect that clears it",
    () => {
      const lines: Array<string> = []
      const exporter = new InMemorySpanExporter()
      return Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        const subscriptions = Context.get(zapier, ConnectionWebhooks.Subscriptions)

        // Once, as the partner's setup: subscribe the app's route; Zapier answers the secret this one time.
        const port = yield* freePort
        const callbackUrl = `http://127.0.0.1:${port}${webhookPath}`
        const subscription = yield* subscriptions.create(FakeZapier.sample.user, callbackUrl)
        const secret = Option.getOrThrow(subscription.secret)
        const app = yield* partnerApp(zapier, options(yield* dataDir, { port, webhookSecret: secret }))
        assert.strictEqual(app.url, `http://127.0.0.1:${port}`)

        // The user connects Slack.
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const connectionId = yield* connectApp(c, control, "slack")
        const plain = yield* c.call("GET", "/api/apps/slack/connection")
        assert.strictEqual(plain.status, 200)
        assert.isUndefined(body(plain).expiring)

        // Forged deliveries: unsigned, signed with another secret, and from a browser on another site.
        const expiresAt = DateTime.add(yield* DateTime.now, { days: 7 })
        const event = JSON.stringify({
          type: "connection.expiry_scheduled",
          expires_at: DateTime.formatIso(expiresAt),
          data: { id: connectionId }
        })
        const timestamp = String(Math.floor(Date.now() / 1000))
        const json = { "content-type": "application/json" }
        const unsigned = yield* post(`${app.url}${webhookPath}`, json, event)
        assert.strictEqual(unsigned.status, 401)
        const forgedSignature = `v1,${Buffer.alloc(32, 7).toString("base64")}`
        const forged = yield* post(
          `${app.url}${webhookPath}`,
          {
            ...json,
            "webhook-id": "msg_forged",
            "webhook-timestamp": timestamp,
            "webhook-signature": forgedSignature
          },
          event
        )
        assert.strictEqual(forged.status, 401)
        const crossSite = yield* post(
          `${app.url}${webhookPath}`,
          { ...json, origin: "http://evil.example", "webhook-id": "msg_x", "webhook-timestamp": timestamp },
          event
        )
        assert.strictEqual(crossSite.status, 403)
        const still = yield* c.call("GET", "/api/apps/slack/connection")
        assert.isUndefined(body(still).expiring, "a refused delivery marks nothing")

        // Zapier's signed notice: marked, with no Zapier request.
        const before = (yield* control.ledger).requests.length
        const [delivery] = yield* control.scheduleConnectionExpiry(connectionId, expiresAt)
        assert.strictEqual(delivery!.status, 200)
        assert.strictEqual((yield* control.ledger).requests.length, before, "marking made no Zapier request")
        assert.strictEqual(yield* delivery!.redeliver, 204)

        const mints = (yield* control.ledger).exchanges.filter((e) => e.kind === "connect").length
        const expiring = yield* c.call("GET", "/api/apps/slack/connection")
        assert.strictEqual(expiring.status, 200)
        const notice = body(expiring).expiring as Body
        assert.strictEqual(notice.expiresAt, DateTime.toEpochMillis(expiresAt))
        const reconnectUrl = new URL(String(notice.reconnectUrl))
        assert.strictEqual(notice.connectOrigin, reconnectUrl.origin)
        assert.strictEqual(reconnectUrl.searchParams.get("reconnect_id"), connectionId)
        assert.strictEqual(
          (yield* control.ledger).exchanges.filter((e) => e.kind === "connect").length,
          mints + 1,
          "the reconnect link cost one connect token"
        )

        // The user follows the link: the renewed connection is no longer expiring.
        const renewed = yield* control.approveConnect(String(notice.reconnectUrl), { mode: "popup" })
        const completed = yield* c.call("POST", "/api/apps/slack/connection", renewed)
        assert.strictEqual(completed.status, 200)
        const after = yield* c.call("GET", "/api/apps/slack/connection")
        assert.strictEqual(after.status, 200)
        assert.strictEqual(body(after).id, connectionId)
        assert.isUndefined(body(after).expiring)

        // The secret is in no answer, log line or span.
        yield* app.close
        yield* Effect.promise(() => exporter.forceFlush())
        const spans = JSON.stringify(exporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.events]))
        assert.include(spans, "ConnectionWebhooks.handler")
        // The server spans record request headers, a delivery's signature redacted.
        assert.include(spans, "http.request.header.webhook-signature")
        assert.notInclude(spans, forgedSignature)
        const answers = JSON.stringify([unsigned, forged, crossSite, expiring, after])
        const value = Redacted.value(secret)
        for (const canary of [value, value.slice("whsec_".length, "whsec_".length + 16), value.slice(-16)]) {
          assert.notInclude(lines.join("\n"), canary)
          assert.notInclude(spans, canary)
          assert.notInclude(answers, canary)
        }
        assert.isTrue(
          lines.some((l) => l.includes("refused")),
          "refusals are logged (their reason, not the body)"
        )
      }).pipe(
        Effect.provide(Telemetry.layerExporter(exporter)),
        Effect.provide(
          Logger.replace(
            Logger.defaultLogger,
            Logger.map(Logger.logfmtLogger, (line) => {
              lines.push(line)
            })
          )
        )
      )
    }
  )

  it.scopedLive("without a configured secret the route does not exist", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const answer = yield* post(`${app.url}${webhookPath}`, { "content-type": "application/json" }, "{}")
      assert.strictEqual(answer.status, 404)
    })
  )
})
