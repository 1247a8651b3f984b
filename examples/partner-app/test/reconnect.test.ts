/**
 * The reconnect link of an expiring connection costs one connect token per user and app while it is good, over
 * real loopback HTTP on a fake Zapier: page reloads (or a poll) get the same link, a GET once the link is within
 * `ReconnectLinks.margin` of its end gets a fresh one, and a completed reconnect forgets it. Time is the TestClock
 * (the fake's and the app's), so the link's lifetime passes without a real wait.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConnectionWebhooks } from "@effect-zapier/http"
import { FakeZapier } from "@effect-zapier/testing"
import { Context, DateTime, Duration, Effect, Option, TestClock } from "effect"
import { margin } from "../src/ReconnectLinks.js"
import { webhookPath } from "../src/Webhooks.js"
import { client, connectApp, dataDir, fakeZapier, freePort, options, partnerApp } from "./fixtures.js"

type Body = Readonly<Record<string, unknown>>
const body = (answer: { readonly body: unknown }) => answer.body as Body

describe("reconnect links of expiring connections", () => {
  it.scoped(
    "N GETs mint one connect token; a GET after the link's reuse window mints another; a renew forgets it",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        const subscriptions = Context.get(zapier, ConnectionWebhooks.Subscriptions)
        const port = yield* freePort
        const subscription = yield* subscriptions.create(
          FakeZapier.sample.user,
          `http://127.0.0.1:${port}${webhookPath}`
        )
        const app = yield* partnerApp(
          zapier,
          options(yield* dataDir, { port, webhookSecret: Option.getOrThrow(subscription.secret) })
        )

        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const connectionId = yield* connectApp(c, control, "slack")

        const mints = Effect.map(control.ledger, (l) => l.exchanges.filter((e) => e.kind === "connect").length)
        const reconnectUrlOf = (query: string) =>
          Effect.map(c.call("GET", `/api/apps/slack/connection${query}`), (answer) => {
            assert.strictEqual(answer.status, 200)
            return String((body(answer).expiring as Body).reconnectUrl)
          })
        const reconnectUrl = reconnectUrlOf("")
        const expiresAt = DateTime.add(yield* DateTime.now, { days: 7 })
        const [delivery] = yield* control.scheduleConnectionExpiry(connectionId, expiresAt)
        assert.strictEqual(delivery!.status, 200)

        // Reloads while the link is good: one connect token, the same link every time.
        const before = yield* mints
        const first = yield* reconnectUrl
        assert.strictEqual(new URL(first).searchParams.get("reconnect_id"), connectionId)
        for (let i = 0; i < 5; i++) assert.strictEqual(yield* reconnectUrl, first)
        assert.strictEqual(yield* mints, before + 1, "six GETs, one connect token")

        // Still good just before the margin (a connect token lasts 6 minutes); from then on a fresh one.
        const lifetime = Duration.minutes(6)
        yield* TestClock.adjust(Duration.subtract(Duration.subtract(lifetime, margin), Duration.seconds(1)))
        assert.strictEqual(yield* reconnectUrl, first)
        assert.strictEqual(yield* mints, before + 1)
        yield* TestClock.adjust(Duration.seconds(2))
        const second = yield* reconnectUrl
        assert.notStrictEqual(second, first)
        assert.strictEqual(yield* reconnectUrl, second)
        assert.strictEqual(yield* mints, before + 2, "a second token once the first link's reuse window ended")

        // The page saw a popup close (the link may be spent): it asks for a fresh one, which is kept in turn.
        const fresh = yield* reconnectUrlOf("?fresh=true")
        assert.notStrictEqual(fresh, second)
        assert.strictEqual(yield* reconnectUrl, fresh)
        assert.strictEqual(yield* mints, before + 3, "?fresh=true mints one")

        // The user follows the link: renewed, and the link is forgotten. Announced expiring again right away (no GET
        // in between), the next GET mints a new link rather than handing out the used one.
        const renewed = yield* control.approveConnect(fresh, { mode: "popup" })
        assert.strictEqual((yield* c.call("POST", "/api/apps/slack/connection", renewed)).status, 200)
        const [again] = yield* control.scheduleConnectionExpiry(connectionId, expiresAt)
        assert.strictEqual(again!.status, 200)
        const third = yield* reconnectUrl
        assert.notStrictEqual(third, fresh)
        assert.strictEqual(yield* mints, before + 4, "a renew forgets the kept link")
      })
  )
})
