/**
 * What the page asks on load and app switch (the connection with `?link=false`, the action's and the trigger's
 * fields) spends no connect token when the user has no valid connection, over real loopback HTTP on a fake Zapier;
 * the Connect button's GET mints exactly one link.
 */
import { assert, describe, it } from "@effect/vitest"
import { FakeZapier } from "@effect-zapier/testing"
import { Context, Effect } from "effect"
import { client, dataDir, fakeZapier, options, partnerApp } from "./fixtures.js"

type Body = Readonly<Record<string, unknown>>
const body = (answer: { readonly body: unknown }) => answer.body as Body

describe("connect links", () => {
  it.scoped("N page-load GETs without a connection mint no connect token; one Connect click mints one", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const control = Context.get(zapier, FakeZapier.FakeZapier)
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const c = client(app.url)
      yield* c.login("u-42", "acme")
      const mints = Effect.map(control.ledger, (l) => l.exchanges.filter((e) => e.kind === "connect").length)

      /** `n` page loads; each answer a 409 of `reason` without a link, none minting. */
      const pageLoads = (n: number, reason: string) =>
        Effect.gen(function* () {
          const before = yield* mints
          for (let i = 0; i < n; i++) {
            const query = i % 2 === 0 ? "?link=false" : "?link=false&fresh=true"
            const status = yield* c.call("GET", `/api/apps/slack/connection${query}`)
            assert.strictEqual(status.status, 409)
            assert.strictEqual(body(status)._tag, "ConnectionNeeded")
            assert.strictEqual(body(status).reason, reason)
            assert.notProperty(body(status), "connectUrl")
            // The page loads the action's (and the trigger's) fields with it: "connect first", no link either.
            for (const [key, actionType] of [
              ["send_channel_message", "WRITE"],
              ["new_channel_message", "READ"]
            ]) {
              const fields = yield* c.call("POST", `/api/apps/slack/actions/${key}/fields`, { actionType, inputs: {} })
              assert.strictEqual(fields.status, 409)
              assert.strictEqual(body(fields).reason, reason)
              assert.notProperty(body(fields), "connectUrl")
            }
          }
          assert.strictEqual((yield* mints) - before, 0, "no connect token for a page load")
        })

      /** The Connect button's GET: a 409 with the link, one connect token. */
      const connectClick = Effect.gen(function* () {
        const before = yield* mints
        const needed = yield* c.call("GET", "/api/apps/slack/connection")
        assert.strictEqual(needed.status, 409)
        assert.strictEqual((yield* mints) - before, 1, "one connect token for the click")
        return { reason: body(needed).reason, link: new URL(String(body(needed).connectUrl)) }
      })

      yield* pageLoads(6, "missing")
      const first = yield* connectClick
      assert.strictEqual(first.reason, "missing")
      const payload = yield* control.approveConnect(first.link.href, { mode: "popup" })
      const connected = yield* c.call("POST", "/api/apps/slack/connection", payload)
      assert.strictEqual(connected.status, 200)
      const connectionId = String(body(connected).id)
      const ok = yield* c.call("GET", "/api/apps/slack/connection?link=false")
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(body(ok).id, connectionId)

      // Expired at Zapier: the same, with the reconnect link minted only by the click.
      yield* control.expireConnection(connectionId)
      yield* pageLoads(6, "expired")
      const again = yield* connectClick
      assert.strictEqual(again.reason, "expired")
      assert.strictEqual(again.link.searchParams.get("reconnect_id"), connectionId)
    })
  )
})
