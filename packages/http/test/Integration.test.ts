/**
 * packages/http against FakeZapierServer over real loopback HTTP (undici on 127.0.0.1), issue 3's test list:
 * the whole flow through Connect UI, the JWT the server verifies, single-flight, refresh before expiry (on the
 * TestClock), 401 → one re-exchange and one retry, pagination, both run body shapes, pending statuses, error
 * envelopes, 429 with Retry-After (real clock, 1–2 s hints), no replay of the create POST, and no secret in any
 * log line or error (every test runs through `withStack`, which checks that at its end).
 */

import { assert, describe, it } from "@effect/vitest"
import {
  ActionCatalog,
  ActionRuns,
  Connections,
  Domain,
  EmbeddedActions,
  type Errors,
  TokenExchange
} from "@effect-zapier/core"
import { FakeZapier, type FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Jose from "jose"
import type { ZapierHttp } from "../src/index.js"
import {
  assertNoLeaks,
  Captured,
  CLIENT_SECRET,
  connectLink,
  decideInConnectUi,
  expectFailure as failureOf,
  partnerKey as key,
  newCapture,
  withStack
} from "./kit.js"

const { Endpoint, Fault, RunScript, sample } = FakeZapier
const user = Domain.EndUser.make({ userId: "u-integration", tenantId: "acme" })
const otherUser = Domain.EndUser.make({ userId: "u-other", tenantId: "acme" })
const NOW = Date.parse("2026-03-01T12:00:00Z")

const ledger = Effect.flatMap(FakeZapier.FakeZapier, (zapier) => zapier.ledger)
const requestsTo = (l: FakeZapier.Ledger, endpoint: string) => l.requests.filter((r) => r.endpoint === endpoint)
const statusesOf = (l: FakeZapier.Ledger, endpoint: string) => requestsTo(l, endpoint).map((r) => r.status)

/** One real event-loop turn: background work (a refresh, WebCrypto) runs on real I/O, not on the TestClock. */
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** A millisecond of real time. */
const tick = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))

/**
 * Turns the event loop until `condition` holds. The give-up is real time (`guardMillis`, a hang), not a number of
 * turns: a busy machine can run through thousands of turns before a loopback exchange is answered.
 */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>, guardMillis = 20_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + guardMillis
    for (let turns = 0; Date.now() < deadline; turns++) {
      if (yield* condition) return true
      // At once for the first checks (the usual case), then a millisecond at a time.
      yield* turns < 1_000 ? turn : tick
    }
    return yield* condition
  })

/** Starts a run of the no-auth formatter app's `uppercase` (no Connect needed). */
const startUppercase = (text: string) =>
  Effect.flatMap(EmbeddedActions.EmbeddedActions, (actions) =>
    actions.start({ user, app: sample.formatter, action: sample.uppercase, inputs: { text }, connection: null })
  )

/** The secrets of another key, so the leak check also looks for them. */
const addKeySecrets = (other: PartnerKey.PartnerKey) =>
  Effect.map(Captured, (capture) => {
    for (const line of Redacted.value(other.privateKeyPem).split("\n")) {
      if (line.length > 0 && !line.startsWith("-----")) capture.secrets.add(line)
    }
  })

describe("Integration: the live client against FakeZapierServer over loopback HTTP", () => {
  it.live("the whole flow: Connect UI followed over HTTP, the callback completed, the run polled to success", () =>
    withStack()(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const actions = yield* EmbeddedActions.EmbeddedActions
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          RunScript.succeed("400 millis", (inputs) => [{ ok: true, channel: inputs.channel, text: inputs.text }])
        )

        const { required, link } = yield* connectLink(user, sample.slack, "https://partner.example/zapier/callback")
        assert.strictEqual(required.reason, "missing")
        assert.isTrue(link.url.startsWith(`${zapier.connectUrl}/to/${sample.slack}?`))

        const location = yield* decideInConnectUi(link.url)
        const callback = Object.fromEntries(new URL(location).searchParams)
        assert.isTrue(location.startsWith("https://partner.example/zapier/callback?"))
        assert.strictEqual(callback.service, "SlackAPI")
        const connection = yield* actions.completeConnection(user, sample.slack, callback)
        assert.strictEqual(connection.id, callback.authentication_id)
        assert.isFalse(connection.isExpired)
        // Connected: the next ensureConnection finds it without a new link.
        assert.strictEqual((yield* actions.ensureConnection(user, sample.slack)).id, connection.id)

        // The run is held pending until the client has read it so (its 400 ms script alone can end before the
        // first read on a busy machine, and no poll would be "waiting"), then released.
        const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage)
        const running = yield* Effect.fork(
          actions.run({
            user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs: { channel: "#general", text: "Hello over loopback" }
          })
        )
        yield* gate.awaitRead
        yield* gate.release
        const result = yield* Fiber.join(running)
        assert.deepStrictEqual(result.results, [{ ok: true, channel: "#general", text: "Hello over loopback" }])

        const l = yield* ledger
        assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 1)
        assert.strictEqual(FakeZapier.exchangesOf(l, user, "connect").length, 1)
        assert.deepStrictEqual(
          l.connects.map((c) => [c.outcome, c.connection]),
          [["approved", connection.id]]
        )
        const runs = FakeZapier.runsOf(l, user)
        assert.strictEqual(runs.length, 1)
        assert.strictEqual(runs[0]!.connection, connection.id)
        assert.strictEqual(runs[0]!.runId, result.runId)
        const polls = FakeZapier.pollsOf(l, result.runId)
        assert.isAtLeast(polls.length, 2)
        assert.strictEqual(polls.at(-1)!.status, "success")
        assert.isTrue(polls.slice(0, -1).every((p) => p.status === "waiting"))
        assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [200])
        // Every request over the wire was answered 2xx/3xx: nothing was refused along the way.
        assert.isTrue(l.requests.every((r) => r.status >= 200 && r.status < 400))
      })
    )
  )

  describe("the partner JWT, as the server verifies it", () => {
    it.live("carries the claims and signature Zapier checks; the ledger shows the exchange", () =>
      withStack()(
        Effect.gen(function* () {
          const tokens = yield* TokenExchange.TokenExchange
          const capture = yield* Captured
          yield* tokens.accessToken(user)
          yield* tokens.accessToken(otherUser)
          const l = yield* ledger
          assert.deepStrictEqual(statusesOf(l, Endpoint.token), [200, 200])
          assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 1)
          assert.strictEqual(FakeZapier.exchangesOf(l, otherUser, "access").length, 1)

          assert.strictEqual(capture.jwts.length, 2)
          const publicKey = yield* Effect.promise(() => Jose.importJWK(key.publicJwk, key.alg))
          const verified = yield* Effect.promise(() =>
            Jose.jwtVerify(capture.jwts[0]!, publicKey, { audience: "connect.zapier.com", issuer: sample.issuer })
          )
          assert.strictEqual(verified.protectedHeader.alg, "ES256")
          assert.strictEqual(verified.protectedHeader.kid, key.kid)
          const claims = verified.payload
          assert.strictEqual(claims.sub, user.userId)
          assert.strictEqual(claims.org_id, user.tenantId)
          assert.strictEqual(claims.nbf, claims.iat)
          assert.isAtMost(claims.exp! - claims.iat!, 300)
          assert.isAbove(claims.exp!, claims.iat!)
          const second = Jose.decodeJwt(capture.jwts[1]!)
          assert.strictEqual(second.sub, otherUser.userId)
          assert.isString(claims.jti)
          assert.notStrictEqual(second.jti, claims.jti)
        })
      )
    )

    const refusals: ReadonlyArray<{
      readonly name: string
      readonly client: (other: PartnerKey.PartnerKey) => Partial<ZapierHttp.Options>
      readonly status: number
      readonly error: string
      readonly mentions: string
    }> = [
      {
        name: "a key the partner never registered (same kid)",
        client: (other) => ({ signingKey: other.privateKeyPem }),
        status: 400,
        error: "invalid_grant",
        mentions: "signature does not verify"
      },
      {
        name: "a wrong issuer",
        client: () => ({ issuer: "https://impostor.example" }),
        status: 400,
        error: "invalid_grant",
        mentions: '"iss" claim'
      },
      {
        name: "a wrong kid",
        client: () => ({ keyId: "retired-key-2024" }),
        status: 400,
        error: "invalid_grant",
        mentions: "kid does not match a registered partner key"
      },
      {
        name: "a wrong client secret",
        client: () => ({ clientSecret: Redacted.make("canary-wrong-secret-51c2e0d9a8") }),
        status: 401,
        error: "invalid_client",
        mentions: "Client authentication failed"
      }
    ]
    for (const refusal of refusals) {
      it.live(`${refusal.name} → TokenExchangeFailed with a helpful message, not retried`, () =>
        Effect.gen(function* () {
          const other = yield* PartnerKey.generate({ alg: "ES256", kid: key.kid })
          yield* withStack({ client: refusal.client(other) })(
            Effect.gen(function* () {
              yield* addKeySecrets(other)
              const capture = yield* Captured
              capture.secrets.add("canary-wrong-secret-51c2e0d9a8")
              const tokens = yield* TokenExchange.TokenExchange
              const error = yield* failureOf(tokens.accessToken(user))
              assert.strictEqual(error._tag, "TokenExchangeFailed")
              const failed = error as Errors.TokenExchangeFailed
              assert.strictEqual(failed.error, refusal.error)
              assert.strictEqual(failed.status, refusal.status)
              assert.include(failed.description ?? "", refusal.mentions)
              assert.include(failed.message, "Check the client id/secret, the signing key and its key id")
              const l = yield* ledger
              assert.deepStrictEqual(statusesOf(l, Endpoint.token), [refusal.status])
              assert.strictEqual(l.exchanges.length, 0)
            })
          )
        })
      )
    }
  })

  it.live("single-flight: 100 concurrent callers → 1 exchange; 10 users × 10 callers → 10 exchanges", () =>
    withStack()(
      Effect.gen(function* () {
        const tokens = yield* TokenExchange.TokenExchange
        const got = yield* Effect.forEach(Array.from({ length: 100 }), () => tokens.accessToken(user), {
          concurrency: "unbounded"
        })
        assert.strictEqual(new Set(got.map((t) => Redacted.value(t.value))).size, 1)
        assert.strictEqual(FakeZapier.exchangesOf(yield* ledger, user, "access").length, 1)

        const users = Array.from({ length: 10 }, (_, i) =>
          Domain.EndUser.make({ userId: `u-flight-${i}`, tenantId: "acme" })
        )
        const perUser = yield* Effect.forEach(
          users.flatMap((u) => Array.from({ length: 10 }, () => u)),
          (u) => Effect.map(tokens.accessToken(u), (t) => [u.userId, Redacted.value(t.value)] as const),
          { concurrency: "unbounded" }
        )
        const byUser = new Map<string, Set<string>>()
        for (const [id, token] of perUser) byUser.set(id, (byUser.get(id) ?? new Set()).add(token))
        assert.strictEqual(byUser.size, 10)
        assert.isTrue([...byUser.values()].every((set) => set.size === 1))
        assert.strictEqual(new Set(perUser.map(([, token]) => token)).size, 10)
        const l = yield* ledger
        assert.strictEqual(l.exchanges.filter((e) => e.kind === "access").length, 11)
        assert.isTrue(users.every((u) => FakeZapier.exchangesOf(l, u, "access").length === 1))
      })
    )
  )

  // TestClock: the server's clock and the client's are the same TestClock; I/O is real, so a background
  // refresh is awaited with event-loop turns, never with a sleep.
  it.effect(
    "refresh before expiry (TestClock): a 120 s token is replaced at 70 s, and no request ever sees it expire",
    () =>
      withStack({ server: { accessTokenTtl: Duration.seconds(120) } })(
        Effect.gen(function* () {
          yield* TestClock.setTime(NOW)
          const tokens = yield* TokenExchange.TokenExchange
          const connections = yield* Connections.Connections
          const first = Redacted.value((yield* tokens.accessToken(user)).value)
          yield* connections.list(user, sample.slack)
          const exchanges = Effect.map(ledger, (l) => FakeZapier.exchangesOf(l, user, "access"))

          // 50 s in: more than half the life left, the cached token is served, nothing is exchanged.
          yield* TestClock.adjust("50 seconds")
          assert.strictEqual(Redacted.value((yield* tokens.accessToken(user)).value), first)
          assert.strictEqual((yield* exchanges).length, 1)

          // 70 s in: less than min(300 s, 60 s) left: the caller still gets the valid token at once, and one
          // refresh starts in the background.
          yield* TestClock.adjust("20 seconds")
          assert.strictEqual(Redacted.value((yield* tokens.accessToken(user)).value), first)
          assert.isTrue(yield* eventually(Effect.map(exchanges, (e) => e.length === 2)))
          const [issued, refreshed] = yield* exchanges
          assert.strictEqual(issued!.at, NOW)
          assert.strictEqual(refreshed!.at, NOW + 70_000)
          assert.isBelow(refreshed!.at, issued!.at + issued!.expiresIn * 1000)
          // Callers keep the first token until the refresh's answer is in; then they get the new one.
          const current = Effect.map(tokens.accessToken(user), (t) => Redacted.value(t.value))
          assert.isTrue(yield* eventually(Effect.map(current, (t) => t !== first)))
          const second = yield* current
          assert.strictEqual((yield* exchanges).length, 2)

          // 130 s in: the first token has expired; requests carry the new one and succeed.
          yield* TestClock.adjust("60 seconds")
          yield* connections.list(user, sample.slack)
          assert.strictEqual(Redacted.value((yield* tokens.accessToken(user)).value), second)
          const l = yield* ledger
          assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 2)
          assert.deepStrictEqual(statusesOf(l, Endpoint.authentications), [200, 200])
          assert.isFalse(l.requests.some((r) => r.status === 401))
        })
      )
  )

  it.live("401 → one re-exchange and one retry; a second 401 is Unauthorized, with no loop", () =>
    withStack()(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const connections = yield* Connections.Connections
        yield* zapier.addConnection(user, sample.slack, { id: "9001" })
        assert.strictEqual((yield* connections.list(user, sample.slack)).length, 1)

        yield* zapier.revokeTokens(user)
        const again = yield* connections.list(user, sample.slack)
        assert.deepStrictEqual(
          again.map((c) => c.id),
          ["9001"]
        )
        let l = yield* ledger
        assert.deepStrictEqual(statusesOf(l, Endpoint.authentications), [200, 401, 200])
        assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 2)

        yield* zapier.injectFault({
          endpoint: Endpoint.authentications,
          user,
          times: 2,
          fault: Fault.status(401, {
            code: "not_authenticated",
            detail: "Authentication credentials were not provided."
          })
        })
        const error = yield* failureOf(connections.list(user, sample.slack))
        assert.strictEqual(error._tag, "Unauthorized")
        l = yield* ledger
        assert.deepStrictEqual(statusesOf(l, Endpoint.authentications), [200, 401, 200, 401, 401])
        assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 3)
      })
    )
  )

  it.live("pagination: 5 connections with pageSize 2 → 3 pages, in order, only the user's own", () =>
    withStack({ client: { pageSize: 2 } })(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const connections = yield* Connections.Connections
        const ids = ["c-1", "c-2", "c-3", "c-4", "c-5"]
        for (const id of ids) yield* zapier.addConnection(user, sample.slack, { id, title: `Slack ${id}` })
        yield* zapier.addConnection(otherUser, sample.slack, { id: "c-not-mine" })
        yield* zapier.addConnection(user, sample.sheets, { id: "c-other-app" })
        const listed = yield* connections.list(user, sample.slack)
        assert.deepStrictEqual(
          listed.map((c) => c.id),
          ids
        )
        assert.deepStrictEqual(
          listed.map((c) => c.title),
          ids.map((id) => `Slack ${id}`)
        )
        assert.deepStrictEqual(statusesOf(yield* ledger, Endpoint.authentications), [200, 200, 200])
      })
    )
  )

  describe("both create-run body shapes", () => {
    const shapes: ReadonlyArray<{
      readonly server: NonNullable<FakeZapierServer.Options["runBody"]>
      readonly client: ZapierHttp.RunBodyShape
      readonly first: ReadonlyArray<number>
    }> = [
      { server: "data", client: "flat", first: [400, 200] },
      { server: "flat", client: "data", first: [400, 200] },
      { server: "both", client: "flat", first: [200] },
      { server: "both", client: "data", first: [200] }
    ]
    for (const shape of shapes) {
      it.live(`server reads ${shape.server}, client starts with ${shape.client} → ${shape.first.join(", ")}`, () =>
        withStack({ server: { runBody: shape.server }, client: { runBodyShape: shape.client } })(
          Effect.gen(function* () {
            const actions = yield* EmbeddedActions.EmbeddedActions
            const capture = yield* Captured
            const one = yield* startUppercase("first")
            assert.deepStrictEqual(statusesOf(yield* ledger, Endpoint.createRun), shape.first)
            // The shape that worked is remembered: the next create is one request.
            const two = yield* startUppercase("second")
            const l = yield* ledger
            assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [...shape.first, 200])
            assert.deepStrictEqual(
              FakeZapier.runsOf(l, user).map((r) => r.inputs),
              [{ text: "first" }, { text: "second" }]
            )
            assert.deepStrictEqual((yield* actions.await(user, one.runId)).results, [{ output: "FIRST" }])
            assert.deepStrictEqual((yield* actions.await(user, two.runId)).results, [{ output: "SECOND" }])
            const switched = capture.lines.some((line) => line.includes("other create-run body shape"))
            assert.strictEqual(switched, shape.first.length === 2)
          })
        )
      )
    }
  })

  describe("pending runs: other status words and HTTP 202", () => {
    const variants: ReadonlyArray<{
      readonly server: Pick<FakeZapierServer.Options, "pendingStatus" | "pendingHttpStatus">
      readonly seen: string
    }> = [
      { server: { pendingStatus: "queued" }, seen: "queued" },
      { server: { pendingStatus: "running" }, seen: "running" },
      { server: { pendingStatus: "queued-then-running" }, seen: "queued" },
      { server: { pendingHttpStatus: 202 }, seen: "waiting" },
      { server: { pendingStatus: "running", pendingHttpStatus: 202 }, seen: "running" }
    ]
    for (const variant of variants) {
      it.live(`${JSON.stringify(variant.server)} is pending until the run ends`, () =>
        withStack({ server: variant.server })(
          Effect.gen(function* () {
            const zapier = yield* FakeZapier.FakeZapier
            const runs = yield* ActionRuns.ActionRuns
            const actions = yield* EmbeddedActions.EmbeddedActions
            // The run is held (holdRuns) until both reads below are done, so however busy the machine, it cannot end
            // before them. Only "queued-then-running" reads the clock: "queued" for the first half of the run's
            // scripted 6 s (the first read must come within 3 s of the create), "running" after it.
            const splits = variant.server.pendingStatus === "queued-then-running"
            const script = RunScript.succeed(splits ? "6 seconds" : "3 seconds", [{ ok: 1 }])
            yield* zapier.scriptRuns(sample.formatter, sample.uppercase, script)
            const gate = yield* zapier.holdRuns(sample.formatter, sample.uppercase)
            const handle = yield* startUppercase("pending")
            const state = yield* runs.get(user, handle.runId)
            assert.strictEqual(state._tag, "RunPending")
            assert.strictEqual((state as Domain.RunPending).status, variant.seen)
            if (splits) {
              // Past half the run's life the word changes; still pending.
              const info = yield* zapier.run(handle.runId)
              yield* Effect.sleep(Duration.millis(Math.max(0, info.createdAt + 3_100 - Date.now())))
            }
            const later = yield* runs.get(user, handle.runId)
            assert.deepStrictEqual(
              [later._tag, (later as Domain.RunPending).status],
              ["RunPending", splits ? "running" : variant.seen]
            )
            yield* gate.release
            const result = yield* actions.await(user, handle.runId)
            assert.deepStrictEqual(result.results, [{ ok: 1 }])
            const polls = FakeZapier.pollsOf(yield* ledger, handle.runId)
            assert.isAtLeast(polls.filter((p) => p.status === "waiting").length, 2)
            assert.strictEqual(polls.at(-1)!.status, "success")
          })
        )
      )
    }
  })

  it.live("Zapier's error envelopes → typed errors: 404 → NotFound, 400 → BadRequest, 403 → Unauthorized", () =>
    withStack()(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const runs = yield* ActionRuns.ActionRuns
        const connections = yield* Connections.Connections
        const catalog = yield* ActionCatalog.ActionCatalog

        const missing = yield* failureOf(runs.get(user, Domain.ActionRunId.make("no-such-run")))
        assert.strictEqual(missing._tag, "NotFound")
        // Another user's run does not exist for this user either.
        const handle = yield* startUppercase("mine")
        const foreign = yield* failureOf(runs.get(otherUser, handle.runId))
        assert.strictEqual(foreign._tag, "NotFound")

        // A run with an action id never issued to the user: Zapier refuses it (not ambiguous: a 400).
        const forged = yield* failureOf(
          runs.create(user, { action: Domain.ActionId.make("uag:never-issued"), connection: null, inputs: {} })
        )
        assert.strictEqual(forged._tag, "BadRequest")

        yield* zapier.injectFault({
          endpoint: Endpoint.authentications,
          fault: Fault.status(400, { code: "invalid", detail: "The app parameter must be a canonical app id." })
        })
        const bad = yield* failureOf(connections.list(user, sample.slack))
        assert.strictEqual(bad._tag, "BadRequest")
        const badRequest = bad as Errors.BadRequest
        assert.deepStrictEqual(
          badRequest.errors.map((e) => [e.code, e.detail]),
          [["invalid", "The app parameter must be a canonical app id."]]
        )
        assert.include(badRequest.message, "The app parameter must be a canonical app id.")

        yield* zapier.injectFault({
          endpoint: Endpoint.actions,
          fault: Fault.status(403, { code: "permission_denied" })
        })
        const denied = yield* failureOf(catalog.resolve(user, sample.slack, sample.sendChannelMessage, "WRITE"))
        assert.strictEqual(denied._tag, "Unauthorized")

        const l = yield* ledger
        assert.deepStrictEqual(statusesOf(l, Endpoint.getRun), [404, 404])
        assert.deepStrictEqual(statusesOf(l, Endpoint.authentications), [400])
        // A 403 is not a stale token: no second exchange, no retry (the 200 is startUppercase's lookup).
        assert.deepStrictEqual(statusesOf(l, Endpoint.actions), [200, 403])
        assert.strictEqual(FakeZapier.exchangesOf(l, user, "access").length, 1)
      })
    )
  )

  describe("429 with Retry-After on a GET (real clock)", () => {
    it.live("delta seconds: the retry comes at least 1 s after the 429", () =>
      withStack()(
        Effect.gen(function* () {
          const zapier = yield* FakeZapier.FakeZapier
          const connections = yield* Connections.Connections
          const capture = yield* Captured
          yield* zapier.injectFault({
            endpoint: Endpoint.authentications,
            fault: Fault.status(429, { code: "throttled", retryAfter: "1 second" })
          })
          yield* connections.list(user, sample.slack)
          const [limited, retried] = requestsTo(yield* ledger, Endpoint.authentications)
          assert.deepStrictEqual([limited!.status, retried!.status], [429, 200])
          assert.isAtLeast(retried!.at - limited!.at, 1000)
          assert.isTrue(capture.lines.some((line) => line.includes("retrying")))
        })
      )
    )

    it.live("HTTP-date: the retry comes no earlier than the date", () =>
      withStack()(
        Effect.gen(function* () {
          const zapier = yield* FakeZapier.FakeZapier
          const connections = yield* Connections.Connections
          yield* zapier.injectFault({
            endpoint: Endpoint.authentications,
            fault: Fault.status(429, { retryAfter: "2 seconds", retryAfterFormat: "http-date" })
          })
          yield* connections.list(user, sample.slack)
          const [limited, retried] = requestsTo(yield* ledger, Endpoint.authentications)
          assert.deepStrictEqual([limited!.status, retried!.status], [429, 200])
          // The header is `new Date(at + 2 s).toUTCString()`: whole seconds.
          const date = Math.floor((limited!.at + 2000) / 1000) * 1000
          assert.isAtLeast(retried!.at, date)
          assert.isAtLeast(retried!.at - limited!.at, 1000)
        })
      )
    )
  })

  describe("the create POST is never replayed on an ambiguous failure", () => {
    it.live("500 after the server committed → RunOutcomeUnknown; the ledger shows one run and one request", () =>
      withStack()(
        Effect.gen(function* () {
          const zapier = yield* FakeZapier.FakeZapier
          yield* zapier.injectFault({
            endpoint: Endpoint.createRun,
            fault: Fault.status(500, { code: "error", detail: "A server error occurred.", afterCommit: true })
          })
          const error = yield* failureOf(startUppercase("once"))
          assert.strictEqual(error._tag, "RunOutcomeUnknown")
          const unknown = error as Errors.RunOutcomeUnknown
          assert.strictEqual(unknown.status, 500)
          assert.strictEqual(unknown.app, sample.formatter)
          const l = yield* ledger
          assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [500])
          assert.strictEqual(FakeZapier.runsOf(l, user).length, 1)
        })
      )
    )

    it.live("502 before processing, or a dropped connection after commit: one request each, never replayed", () =>
      withStack()(
        Effect.gen(function* () {
          const zapier = yield* FakeZapier.FakeZapier
          yield* zapier.injectFault({ endpoint: Endpoint.createRun, fault: Fault.status(502) })
          assert.strictEqual((yield* failureOf(startUppercase("a")))._tag, "RunOutcomeUnknown")
          let l = yield* ledger
          assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [502])
          assert.strictEqual(FakeZapier.runsOf(l, user).length, 0)

          yield* zapier.injectFault({ endpoint: Endpoint.createRun, fault: Fault.disconnect({ afterCommit: true }) })
          assert.strictEqual((yield* failureOf(startUppercase("b")))._tag, "RunOutcomeUnknown")
          l = yield* ledger
          assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [502, 0])
          assert.strictEqual(FakeZapier.runsOf(l, user).length, 1)

          // The client is not poisoned: the next create goes through once.
          yield* startUppercase("c")
          l = yield* ledger
          assert.deepStrictEqual(statusesOf(l, Endpoint.createRun), [502, 0, 200])
          assert.strictEqual(FakeZapier.runsOf(l, user).length, 2)
        })
      )
    )
  })

  it("the leak check finds a secret in a log line or an error (so its silence elsewhere means something)", () => {
    const inLog = newCapture()
    inLog.lines.push(`level=DEBUG message="exchanging" secret=${CLIENT_SECRET}`)
    assert.throws(() => assertNoLeaks(inLog), /leaked/)
    const inError = newCapture()
    inError.secrets.add("access-token-canary-0042")
    inError.errors.push({ _tag: "Unauthorized", detail: "Bearer access-token-canary-0042" })
    assert.throws(() => assertNoLeaks(inError), /leaked/)
    const clean = newCapture()
    clean.lines.push('level=DEBUG message="Zapier request failed; retrying"')
    assert.doesNotThrow(() => assertNoLeaks(clean))
  })
})
