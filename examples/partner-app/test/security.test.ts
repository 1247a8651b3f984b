/**
 * The partner app as an attacker meets it, over real loopback HTTP on a fake Zapier: login CSRF (form, multipart,
 * another Origin or site), an oversize body, the page's headers, Connect links for apps the partner does not
 * offer, a forged callback that would put the attacker's words on the page, results too deep or too large to
 * store, the callback's query kept out of the server's spans, and the trigger watches (same-origin JSON state
 * changes, one user's watches out of another's reach, no token, secret or payload in the consumer's spans).
 */
import { assert, describe, it } from "@effect/vitest"
import { TokenExchange } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Context, Duration, Effect, Redacted } from "effect"
import * as Telemetry from "../src/Telemetry.js"
import { client, dataDir, fakeZapier, options, partnerApp, SESSION_SECRET, settled } from "./fixtures.js"

type Body = Readonly<Record<string, unknown>>
const body = (answer: { readonly body: unknown }) => answer.body as Body

/** A raw request (no cookie jar), to send what a browser on another site would. */
const raw = (url: string, init: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, redirect: "manual" })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

describe("the partner app against an attacker", () => {
  it.scopedLive(
    "login and every state change: JSON only, from this origin only (403/415), and 413 over the limit",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const app = yield* partnerApp(zapier, options(yield* dataDir))
        const login = `${app.url}/api/session`
        const form = yield* raw(login, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "userId=attacker&tenantId=acme"
        })
        assert.strictEqual(form.status, 415)
        assert.isNull(form.headers.get("set-cookie"))
        const multipart = new FormData()
        multipart.set("userId", "attacker")
        multipart.set("tenantId", "acme")
        const fromMultipart = yield* raw(login, { method: "POST", body: multipart })
        assert.strictEqual(fromMultipart.status, 415)
        const plain = yield* raw(login, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: JSON.stringify({ userId: "attacker", tenantId: "acme" })
        })
        assert.strictEqual(plain.status, 415)
        const json = JSON.stringify({ userId: "attacker", tenantId: "acme" })
        for (const headers of [
          { origin: "http://evil.example" },
          { origin: "null" },
          { "sec-fetch-site": "cross-site" },
          { "sec-fetch-site": "same-site" }
        ]) {
          const refused = yield* raw(login, {
            method: "POST",
            headers: { "content-type": "application/json", ...headers },
            body: json
          })
          assert.strictEqual(refused.status, 403, JSON.stringify(headers))
          assert.isNull(refused.headers.get("set-cookie"))
        }
        const logout = yield* raw(login, { method: "DELETE", headers: { origin: "http://evil.example" } })
        assert.strictEqual(logout.status, 403)
        // The app's own page: same origin, JSON.
        const own = yield* raw(login, {
          method: "POST",
          headers: { "content-type": "application/json", origin: app.url, "sec-fetch-site": "same-origin" },
          body: json
        })
        assert.strictEqual(own.status, 200)

        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const huge = yield* c.call("POST", "/api/runs", {
          app: "formatter",
          action: "uppercase",
          inputs: { text: "x".repeat(200 * 1024) }
        })
        assert.strictEqual(huge.status, 413)
        const ledger = yield* Context.get(zapier, FakeZapier.FakeZapier).ledger
        assert.strictEqual(ledger.runs.length, 0, "nothing was forwarded to Zapier")
      })
  )

  it.scopedLive("the page: CSP, X-Frame-Options and nosniff", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      for (const path of ["/", "/app.js", "/api/session"]) {
        const answer = yield* raw(`${app.url}${path}`, {})
        assert.strictEqual(answer.headers.get("x-frame-options"), "DENY", path)
        assert.strictEqual(answer.headers.get("x-content-type-options"), "nosniff", path)
        const csp = answer.headers.get("content-security-policy") ?? ""
        assert.include(csp, "frame-ancestors 'none'", path)
        assert.include(csp, "script-src 'self'", path)
      }
    })
  )

  it.scopedLive("no Connect link for an app the partner does not offer (404, no connect token minted)", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const control = Context.get(zapier, FakeZapier.FakeZapier)
      const app = yield* partnerApp(
        zapier,
        options(yield* dataDir, { apps: [{ id: FakeZapier.sample.slack, requiresAuth: true }] })
      )
      const c = client(app.url)
      yield* c.login("u-42", "acme")
      yield* control.resetLedger
      const sheets = yield* c.call("GET", "/api/apps/google-sheets/connection")
      assert.strictEqual(sheets.status, 404)
      assert.notProperty(body(sheets), "connectUrl")
      const complete = yield* c.call("POST", "/api/apps/google-sheets/connection", {
        type: "authenticationSuccess",
        authId: "1"
      })
      assert.strictEqual(complete.status, 404)
      assert.strictEqual((yield* control.ledger).exchanges.length, 0, "no token was exchanged for it")
      assert.strictEqual((yield* c.call("GET", "/api/apps/slack/connection")).status, 409)
    })
  )

  it.scopedLive("a forged callback puts a reason code on the page's URL, never the attacker's words", () =>
    Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const c = client(app.url)
      yield* c.login("u-42", "acme")
      yield* c.call("GET", "/api/apps/slack/connection")
      const forged = yield* c.call(
        "GET",
        "/zapier/callback?app=slack&error=access_denied&error_description=Call+%2B1+555+0100+to+unlock"
      )
      assert.strictEqual(forged.status, 303)
      const back = new URL(forged.headers.get("location")!, app.url)
      assert.deepStrictEqual(Object.fromEntries(back.searchParams), { connect: "failed", reason: "unbound" })
    })
  )

  it.scopedLive(
    "results too deep or too large are refused: the run fails with ResultRejected instead of staying pending",
    () =>
      Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        const app = yield* partnerApp(zapier, options(yield* dataDir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        let deep: unknown = "bottom"
        for (let i = 0; i < 100; i++) deep = { nested: deep }
        yield* control.scriptRuns(
          "formatter",
          "uppercase",
          FakeZapier.RunScript.succeed("100 millis", [deep]),
          FakeZapier.RunScript.succeed("100 millis", [{ output: "y".repeat(300 * 1024) }]),
          FakeZapier.RunScript.succeed("100 millis", [{ output: "A" }])
        )
        for (const problem of ["nested deeper than", "larger than"]) {
          const started = yield* c.call("POST", "/api/runs", {
            app: "formatter",
            action: "uppercase",
            inputs: { text: "a" }
          })
          assert.strictEqual(started.status, 202)
          const ended = body(yield* settled(c, String(body(started).runId)))
          assert.strictEqual(ended.state, "failed", problem)
          const error = ended.error as Body
          assert.strictEqual(error.tag, "ResultRejected")
          assert.include(String(error.message), problem)
        }
        const fine = yield* c.call("POST", "/api/runs", {
          app: "formatter",
          action: "uppercase",
          inputs: { text: "a" }
        })
        assert.deepStrictEqual(body(yield* settled(c, String(body(fine).runId))).results, [{ output: "A" }])
      })
  )

  it.scopedLive("the server's span of the callback records its path, never its query", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function* () {
      const zapier = yield* fakeZapier()
      const app = yield* partnerApp(zapier, options(yield* dataDir))
      const c = client(app.url)
      yield* c.login("u-42", "acme")
      yield* c.call(
        "GET",
        "/zapier/callback?app=slack&authentication_id=CANARY-ID-4411&state=CANARY-STATE-9d0e&connect_attempt=CANARY-ATTEMPT-77"
      )
      yield* c.call("GET", "/api/session")
      const spans = exporter.getFinishedSpans()
      const text = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes })))
      assert.isTrue(
        spans.some((s) => s.attributes["url.path"] === "/zapier/callback"),
        "the callback's request has a span"
      )
      assert.isTrue(
        spans.some((s) => s.attributes["url.path"] === "/api/session"),
        "other requests keep the platform's span"
      )
      console.log(
        JSON.stringify(
          spans
            .filter((s) => JSON.stringify(s.attributes).includes("CANARY") || s.name.includes("CANARY"))
            .map((s) => ({ name: s.name, attributes: s.attributes }))
        )
      )
      for (const canary of ["CANARY-ID-4411", "CANARY-STATE-9d0e", "CANARY-ATTEMPT-77"]) assert.notInclude(text, canary)
    }).pipe(Effect.provide(Telemetry.layerExporter(exporter)))
  })

  it.scopedLive(
    "trigger watches: same-origin JSON only (403/415/401), another user's watch out of reach, no secret or payload in spans",
    () => {
      const exporter = new InMemorySpanExporter()
      const PAYLOAD_CANARY = "canary-trigger-payload-7be4c1"
      return Effect.gen(function* () {
        const zapier = yield* fakeZapier()
        const control = Context.get(zapier, FakeZapier.FakeZapier)
        yield* control.setInboxSettings({ activation: "100 millis" })
        const app = yield* partnerApp(zapier, options(yield* dataDir))
        const c = client(app.url)
        yield* c.login("u-42", "acme")
        const needed = yield* c.call("GET", "/api/apps/slack/connection")
        yield* c.call(
          "POST",
          "/api/apps/slack/connection",
          yield* control.approveConnect(String(body(needed).connectUrl), { mode: "popup" })
        )
        const request = JSON.stringify({
          app: "slack",
          trigger: "new_channel_message",
          inputs: { channel: "#general" }
        })
        const watches = `${app.url}/api/watches`
        // With the user's cookie, as a forged cross-site request would carry it.
        const cookie = { cookie: c.cookie! }
        for (const headers of [{ origin: "http://evil.example" }, { "sec-fetch-site": "cross-site" }]) {
          const refused = yield* raw(watches, {
            method: "POST",
            headers: { ...cookie, "content-type": "application/json", ...headers },
            body: request
          })
          assert.strictEqual(refused.status, 403, JSON.stringify(headers))
        }
        const plain = yield* raw(watches, {
          method: "POST",
          headers: { ...cookie, "content-type": "text/plain" },
          body: request
        })
        assert.strictEqual(plain.status, 415)
        const anonymous = yield* raw(watches, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: request
        })
        assert.strictEqual(anonymous.status, 401)
        assert.strictEqual((yield* raw(watches, {})).status, 401)
        assert.strictEqual((yield* control.inboxes).length, 0, "no inbox was ensured")

        const watched = yield* c.call("POST", "/api/watches", JSON.parse(request))
        assert.strictEqual(watched.status, 200)
        const key = String(body(watched).key)
        const inbox = String(body(watched).inbox)
        const stopCrossSite = yield* raw(`${watches}/${encodeURIComponent(key)}`, {
          method: "DELETE",
          headers: { ...cookie, origin: "http://evil.example" }
        })
        assert.strictEqual(stopCrossSite.status, 403)
        const other = client(app.url)
        yield* other.login("u-43", "acme")
        assert.strictEqual((yield* other.call("DELETE", `/api/watches/${encodeURIComponent(key)}`)).status, 404)
        assert.deepStrictEqual((yield* other.call("GET", "/api/watches")).body, [])
        assert.deepStrictEqual(
          (yield* control.inboxes).map((i) => i.status),
          ["active"],
          "the inbox is still there"
        )

        yield* control.emitTriggerEvents(inbox, [{ text: PAYLOAD_CANARY }])
        yield* Effect.gen(function* () {
          while ((yield* control.inboxCounts).acked < 1) yield* Effect.sleep("50 millis")
        }).pipe(
          Effect.timeoutFail({ duration: Duration.seconds(60), onTimeout: () => new Error("no ack") }),
          Effect.orDie
        )
        const shown = JSON.stringify((yield* c.call("GET", "/api/watches")).body)
        assert.include(shown, PAYLOAD_CANARY, "the user sees the payload")
        const accessToken = Redacted.value(
          (yield* Context.get(zapier, TokenExchange.TokenExchange).accessToken(FakeZapier.sample.user)).value
        )
        for (const secret of [accessToken, FakeZapier.sample.clientSecret, SESSION_SECRET]) {
          assert.notInclude(shown, secret)
          assert.notInclude(shown, secret.slice(0, 24))
        }
        const spans = exporter.getFinishedSpans()
        assert.isTrue(
          spans.some((s) => s.name === "TriggerInbox.lease" || s.name.startsWith("TriggerInboxes.")),
          `the consumer's calls are traced (${[...new Set(spans.map((s) => s.name))].join(", ")})`
        )
        const text = JSON.stringify(
          spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events.map((e) => e.attributes) }))
        )
        for (const canary of [accessToken, accessToken.slice(0, 24), FakeZapier.sample.clientSecret, SESSION_SECRET]) {
          assert.notInclude(text, canary)
        }
        assert.notInclude(text, PAYLOAD_CANARY)
        assert.notInclude(text, c.cookie!.split("=")[1]!.slice(0, 24))
      }).pipe(Effect.provide(Telemetry.layerExporter(exporter)))
    }
  )
})
