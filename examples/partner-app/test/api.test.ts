/**
 * The partner backend over real loopback HTTP, on a fake Zapier: sessions, the connect flow, runs, errors, and a
 * run resumed by a restarted backend (the durable run's journal is in the data folder).
 */
import { createHmac } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { FakeZapier } from "@effect-zapier/testing"
import { Context, Effect } from "effect"
import { client, dataDir, fakeZapier, options, partnerApp, settled } from "./fixtures.js"

interface Body {
  readonly _tag?: string
  readonly message?: string
  readonly [key: string]: unknown
}
const body = (answer: { readonly body: unknown }) => answer.body as Body

/** The popup's message after the user approves in Connect UI, for the link in a 409. */
const approve = (zapier: FakeZapier.Control, needed: Body) =>
  zapier.approveConnect(String(needed.connectUrl), { mode: "popup", title: "Slack canary-title" })

describe("sessions", () => {
  it.scopedLive("a signed HttpOnly cookie; tampered, foreign or cleared cookies get 401", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const c = client(app.url)

      const anonymous = yield* c.call("GET", "/api/session")
      assert.strictEqual(anonymous.status, 401)
      assert.strictEqual(body(anonymous)._tag, "NotLoggedIn")

      const bad = yield* c.call("POST", "/api/session", { userId: "  ", tenantId: "acme" })
      assert.strictEqual(bad.status, 400)

      const login = yield* c.login("u-42", "acme")
      assert.strictEqual(login.status, 200)
      const setCookie = login.headers.get("set-cookie") ?? ""
      assert.match(setCookie, /^partner_session=[\w-]+\.[\w-]+;/)
      assert.match(setCookie, /HttpOnly/)
      assert.match(setCookie, /SameSite=Lax/)
      assert.notMatch(setCookie, /Secure/)
      assert.deepStrictEqual(body(yield* c.call("GET", "/api/session")), { userId: "u-42", tenantId: "acme" })

      const [payload, signature] = c.cookie!.slice("partner_session=".length).split(".")
      const claims = JSON.parse(Buffer.from(payload!, "base64url").toString()) as { u: string; t: string; exp: number }
      const forged = Buffer.from(JSON.stringify({ ...claims, u: "u-admin" })).toString("base64url")
      c.setCookie(`partner_session=${forged}.${signature}`)
      assert.strictEqual((yield* c.call("GET", "/api/session")).status, 401)

      const otherKey = createHmac("sha256", "another-secret-another-secret-another").update(forged).digest("base64url")
      c.setCookie(`partner_session=${forged}.${otherKey}`)
      assert.strictEqual((yield* c.call("GET", "/api/apps")).status, 401)

      const expired = Buffer.from(JSON.stringify({ ...claims, exp: Date.now() - 1000 })).toString("base64url")
      const resigned = createHmac("sha256", "canary-session-secret-0123456789abcdef")
        .update(expired)
        .digest("base64url")
      c.setCookie(`partner_session=${expired}.${resigned}`)
      assert.strictEqual((yield* c.call("GET", "/api/session")).status, 401)

      yield* c.login("u-42", "acme")
      const logout = yield* c.call("DELETE", "/api/session")
      assert.strictEqual(logout.status, 204)
      assert.match(logout.headers.get("set-cookie") ?? "", /Max-Age=0/)
      assert.strictEqual((yield* c.call("GET", "/api/session")).status, 401)
    })
  )
})

describe("connect and run", () => {
  it.scopedLive("409 with a Connect link, the popup payload completes it, the run succeeds; runs are per user", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const control = Context.get(zapier, FakeZapier.FakeZapier)
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const c = client(app.url)
      yield* c.login("u-42", "acme")

      const apps = yield* c.call("GET", "/api/apps")
      assert.deepStrictEqual(apps.body, [
        { id: "slack", title: "Slack", requiresAuth: true },
        { id: "google-sheets", title: "Google Sheets", requiresAuth: true },
        { id: "formatter", title: "Formatter", requiresAuth: false }
      ])

      const request = { app: "slack", action: "send_channel_message", inputs: { channel: "#general", text: "Hi" } }
      const needed = yield* c.call("POST", "/api/runs", request)
      assert.strictEqual(needed.status, 409)
      assert.strictEqual(body(needed).reason, "missing")
      const connectUrl = new URL(String(body(needed).connectUrl))
      assert.strictEqual(body(needed).connectOrigin, connectUrl.origin)
      assert.strictEqual(connectUrl.pathname, "/to/slack")

      const fieldsBefore = yield* c.call("POST", "/api/apps/slack/actions/send_channel_message/fields", {
        actionType: "WRITE",
        inputs: {}
      })
      assert.strictEqual(fieldsBefore.status, 409)

      const payload = yield* approve(control, body(needed))
      const connected = yield* c.call("POST", "/api/apps/slack/connection", payload)
      assert.strictEqual(connected.status, 200)
      assert.strictEqual(body(connected).app, "slack")
      const replay = yield* c.call("POST", "/api/apps/slack/connection", payload)
      assert.strictEqual(replay.status, 400)
      assert.strictEqual(body(replay).reason, "replay")

      const fields = yield* c.call("POST", "/api/apps/slack/actions/send_channel_message/fields", {
        actionType: "WRITE",
        inputs: {}
      })
      assert.strictEqual(fields.status, 200)
      const channel = (fields.body as ReadonlyArray<Body>).find((f) => f.id === "channel")!
      assert.strictEqual(channel.required, true)
      assert.strictEqual((channel.choices as ReadonlyArray<unknown>).length, FakeZapier.sampleChannels.length)

      const started = yield* c.call("POST", "/api/runs", request)
      assert.strictEqual(started.status, 202)
      assert.strictEqual(body(started).state, "pending")
      assert.strictEqual(body(started).status, "created")
      const runId = String(body(started).runId)

      const other = client(app.url)
      yield* other.login("u-7", "acme")
      assert.strictEqual((yield* other.call("GET", `/api/runs/${runId}`)).status, 404)

      const done = yield* settled(c, runId)
      assert.strictEqual(body(done).state, "succeeded")
      assert.deepStrictEqual(body(done).results, [
        { ok: true, channel: "#general", text: "Hi", ts: "1711900000.000100" }
      ])
      assert.strictEqual((yield* control.runs).length, 1)
    })
  )

  it.scopedLive(
    "failures: a failed run, invalid inputs (422), an app not offered (404), an expired connection (409)",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        const app = yield* partnerApp(zapier, options(yield* dataDir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const needed = yield* c.call("GET", "/api/apps/slack/connection")
        yield* c.call("POST", "/api/apps/slack/connection", yield* approve(control, body(needed)))

        const failing = yield* c.call("POST", "/api/runs", {
          app: "slack",
          action: "send_direct_message",
          inputs: { text: "Hi" }
        })
        assert.strictEqual(failing.status, 202)
        const failed = yield* settled(c, String(body(failing).runId))
        assert.strictEqual(body(failed).state, "failed")
        assert.strictEqual(body(failed).status, "error")
        const error = body(failed).error as Body
        assert.strictEqual(error.tag, "ActionRunFailed")
        assert.match(String(error.message), /No Slack user matches the given username/)

        const invalid = yield* c.call("POST", "/api/runs", { app: "slack", action: "send_channel_message", inputs: {} })
        assert.strictEqual(invalid.status, 422)
        assert.deepStrictEqual(
          (body(invalid).problems as ReadonlyArray<Body>).map((p) => p.field),
          ["channel", "text"]
        )

        const notOffered = yield* c.call("POST", "/api/runs", { app: "hubspot", action: "x", inputs: {} })
        assert.strictEqual(notOffered.status, 404)
        const unknownAction = yield* c.call("POST", "/api/runs", { app: "slack", action: "no_such_action", inputs: {} })
        assert.strictEqual(unknownAction.status, 404)

        const [connection] = yield* control.connections(FakeZapier.sample.user, "slack")
        yield* control.expireConnection(connection!.id)
        const expired = yield* c.call("POST", "/api/runs", {
          app: "slack",
          action: "send_channel_message",
          inputs: { channel: "#general", text: "Hi" }
        })
        assert.strictEqual(expired.status, 409)
        assert.strictEqual(body(expired).reason, "expired")
        assert.strictEqual(new URL(String(body(expired).connectUrl)).searchParams.get("reconnect_id"), connection!.id)

        const formatter = yield* c.call("POST", "/api/runs", {
          app: "formatter",
          action: "uppercase",
          inputs: { text: "a" }
        })
        assert.strictEqual(formatter.status, 202)
        assert.deepStrictEqual(body(yield* settled(c, String(body(formatter).runId))).results, [{ output: "A" }])
      })
  )

  it.scopedLive("a run started before a restart is resumed by the next backend (same data folder)", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const control = Context.get(zapier, FakeZapier.FakeZapier)
      const dir = yield* dataDir
      const first = yield* partnerApp(zapier, options(dir))
      const c = client(first.url)
      yield* c.login("u-42", "acme")
      const needed = yield* c.call("GET", "/api/apps/slack/connection")
      yield* c.call("POST", "/api/apps/slack/connection", yield* approve(control, body(needed)))
      const started = yield* c.call("POST", "/api/runs", {
        app: "slack",
        action: "send_channel_message",
        inputs: { channel: "#general", text: "across a restart" }
      })
      const runId = String(body(started).runId)
      yield* first.close // the background await stops with it

      const second = yield* partnerApp(zapier, options(dir))
      const again = client(second.url)
      again.setCookie(c.cookie) // same session secret: the session survives the restart
      const pending = yield* again.call("GET", `/api/runs/${runId}`)
      assert.strictEqual(pending.status, 200)
      // Usually still pending; on a loaded machine the fake's 2 s run may have ended while the backends changed
      // hands, and the second backend's first read copies its end: either way the result below comes from it.
      assert.include(["pending", "succeeded"], body(pending).state)
      const done = yield* settled(again, runId)
      assert.strictEqual(body(done).state, "succeeded")
      assert.strictEqual((body(done).results as ReadonlyArray<Body>)[0]!.text, "across a restart")
      assert.strictEqual((yield* control.runs).length, 1)
      // The second backend reused the connection stored by the first one (no new Connect).
      assert.strictEqual((yield* control.connections(FakeZapier.sample.user, "slack")).length, 1)
    })
  )

  it.scopedLive(
    "the redirect pattern: /zapier/callback completes for the session's user, once, and never without one",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        const app = yield* partnerApp(zapier, options(yield* dataDir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const needed = yield* c.call("GET", "/api/apps/slack/connection")
        const link = new URL(String(body(needed).connectUrl))
        link.searchParams.set("redirect_uri", `${app.url}/zapier/callback?app=slack`)
        const callback = (yield* control.approveConnect(link.toString())) as Record<string, string>
        const query = new URLSearchParams({ app: "slack", ...callback }).toString()

        const anonymous = client(app.url)
        const refused = yield* anonymous.call("GET", `/zapier/callback?${query}`)
        assert.strictEqual(refused.status, 303)
        const refusedAt = new URL(refused.headers.get("location")!, app.url)
        assert.strictEqual(refusedAt.searchParams.get("connect"), "failed")
        assert.strictEqual(refusedAt.searchParams.get("reason"), "not_logged_in")
        assert.isNull(refusedAt.searchParams.get("message"), "no text for the page to show from the URL")

        const completed = yield* c.call("GET", `/zapier/callback?${query}`)
        assert.strictEqual(completed.status, 303)
        assert.strictEqual(completed.headers.get("cache-control"), "no-store")
        const back = new URL(completed.headers.get("location")!, app.url)
        assert.strictEqual(back.pathname, "/")
        assert.strictEqual(back.searchParams.get("connect"), "ok")
        assert.strictEqual(back.searchParams.get("app"), "slack")
        const connection = yield* c.call("GET", "/api/apps/slack/connection")
        assert.strictEqual(connection.status, 200)
        assert.strictEqual(body(connection).id, callback.authentication_id)

        const replayed = yield* c.call("GET", `/zapier/callback?${query}`)
        const replayedAt = new URL(replayed.headers.get("location")!, app.url)
        assert.strictEqual(replayedAt.searchParams.get("connect"), "failed")
        assert.strictEqual(replayedAt.searchParams.get("reason"), "replay")
      })
  )
})
