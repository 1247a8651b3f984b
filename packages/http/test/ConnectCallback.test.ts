/**
 * ConnectCallback.handler mounted on a real NodeHttpServer on 127.0.0.1, in front of the live client and
 * FakeZapierServer: the end user's browser is played over HTTP (open the Connect link, approve or deny, follow the
 * redirect to the partner's callback with the partner's session cookie). Every refusal is checked to leave the
 * ConnectionStore as it was. The TestClock is the clock of both the fake and the store (I/O is real), so the
 * reconnect test can tell that `verifiedAt` moved.
 */

import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { ConnectCallback } from "../src/index.js"
import {
  assertNoLeaks,
  Captured,
  connectLink,
  decideInConnectUi,
  logCapture,
  newCapture,
  type LoopbackServices as Services,
  loopbackStack as stack,
  visit
} from "./kit.js"

const { sample } = FakeZapier
const NOW = Date.parse("2026-03-01T12:00:00Z")
const alice = Domain.EndUser.make({ userId: "alice", tenantId: "acme" })
const bob = Domain.EndUser.make({ userId: "bob", tenantId: "acme" })

// ---------------------------------------------------------------------------------------------------------------
// The partner's app: sessions by cookie, and the callback routes
// ---------------------------------------------------------------------------------------------------------------

class NotSignedIn extends Data.TaggedError("NotSignedIn")<{}> {}

const sessions: Record<string, Domain.EndUser> = { "sess-alice": alice, "sess-bob": bob }

const callbackOptions = {
  resolveUser: (request: { readonly cookies: Readonly<Record<string, string>> }) => {
    const user = sessions[request.cookies.session ?? ""]
    return user !== undefined ? Effect.succeed(user) : Effect.fail(new NotSignedIn())
  },
  onSuccess: (connection: Domain.Connection, context: ConnectCallback.SuccessContext) =>
    HttpServerResponse.redirect(`/connected?connection=${connection.id}&app=${context.app}`, { status: 303 }),
  onFailure: (error: ConnectCallback.Failure<NotSignedIn>, context: ConnectCallback.FailureContext) =>
    error._tag === "NotSignedIn"
      ? HttpServerResponse.text("Sign in first", { status: 401 })
      : HttpServerResponse.redirect(
          `/connect-failed?reason=${error._tag === "ConnectFailed" ? error.reason : error._tag}` +
            `${context.problem !== undefined ? `&problem=${encodeURIComponent(context.problem)}` : ""}`,
          { status: 303, headers: { "x-failure-app": error._tag === "ConnectFailed" ? error.app : "" } }
        )
}

const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/zapier/callback", ConnectCallback.handler(callbackOptions)),
  HttpRouter.get("/zapier/callback/slack", ConnectCallback.handler({ ...callbackOptions, app: sample.slack })),
  HttpRouter.get(
    "/zapier/callback/by-service",
    ConnectCallback.handler({ ...callbackOptions, services: { SlackAPI: sample.slack } })
  ),
  HttpRouter.get(
    "/zapier/callback/by-service-map",
    ConnectCallback.handler({ ...callbackOptions, services: new Map([["SlackAPI", sample.slack]]) })
  )
)

/** The partner's server on 127.0.0.1 (ephemeral port), over the loopback stack. */
const partner = (capture: ReturnType<typeof newCapture>) =>
  HttpServer.serve(routes).pipe(
    Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(stack(capture))
  )

const partnerUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}` : "http://invalid"
)

/** Runs a test against a fresh partner server and stack, on the TestClock set to NOW; then checks for leaks. */
const withPartner = <A, E>(
  body: Effect.Effect<A, E, Services | HttpServer.HttpServer>
): Effect.Effect<A, E | unknown, never> => {
  const capture = newCapture()
  return TestClock.setTime(NOW).pipe(
    Effect.zipRight(body),
    Effect.provide(partner(capture)),
    Effect.provide(logCapture(capture)),
    Effect.tap(() => Effect.sync(() => assertNoLeaks(capture)))
  ) as Effect.Effect<A, E | unknown, never>
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/** What the store holds for a user and app: the stored connection and the attempts (open/closed). */
const snapshot = (user: Domain.EndUser, app: Domain.AppId, states: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const store = yield* ConnectionStore.ConnectionStore
    const stored = yield* store.get(user, app)
    const attempts = yield* Effect.forEach(states, (state) => store.findAttempt(state))
    const latest = yield* store.latestAttempt(user, app)
    return JSON.stringify({
      connection: Option.match(stored, {
        onNone: () => null,
        onSome: (s) => [s.connectionId, DateTime.toEpochMillis(s.storedAt), DateTime.toEpochMillis(s.verifiedAt)]
      }),
      attempts: attempts.map((a) => Option.match(a, { onNone: () => null, onSome: (r) => r.closed })),
      latest: Option.match(latest, { onNone: () => null, onSome: (r) => [r.attempt.state, r.closed] })
    })
  })

/** A Connect link for `user` (redirect to `path` on the partner), approved in Connect UI: the callback URL. */
const approvedCallback = (user: Domain.EndUser, path = "/zapier/callback?app=slack", app = sample.slack) =>
  Effect.gen(function* () {
    const base = yield* partnerUrl
    const { link } = yield* connectLink(user, app, `${base}${path}`)
    const location = yield* decideInConnectUi(link.url)
    return { location, link, state: new URL(location).searchParams.get("state") ?? "" }
  })

const failedWith = (answer: { readonly status: number; readonly location: string | undefined }) => {
  assert.strictEqual(answer.status, 303)
  const location = new URL(answer.location ?? "", "http://partner")
  assert.strictEqual(location.pathname, "/connect-failed")
  return location.searchParams.get("reason")
}

const connectedWith = (answer: { readonly status: number; readonly location: string | undefined }) => {
  assert.strictEqual(answer.status, 303)
  const location = new URL(answer.location ?? "", "http://partner")
  assert.strictEqual(location.pathname, "/connected")
  return location.searchParams.get("connection")
}

/** The same URL with its query edited. */
const withQuery = (url: string, edit: (params: URLSearchParams) => void): string => {
  const u = new URL(url)
  edit(u.searchParams)
  return u.toString()
}

// ---------------------------------------------------------------------------------------------------------------
// parseQuery (pure)
// ---------------------------------------------------------------------------------------------------------------

describe("ConnectCallback.parseQuery", () => {
  it("reads the success and the error redirect, and the partner's app parameter", () => {
    assert.deepStrictEqual(
      ConnectCallback.parseQuery("?authentication_id=12345&service=SlackAPI&state=s-1&app=slack&utm=x"),
      Either.right({
        _tag: "Success",
        authenticationId: "12345",
        service: "SlackAPI",
        state: "s-1",
        attempt: undefined,
        app: Domain.AppId.make("slack")
      } as const)
    )
    assert.deepStrictEqual(
      ConnectCallback.parseQuery("error=server_error&error_description=OAuth+Failed%3A+access_denied&state=s-2"),
      Either.right({
        _tag: "Error",
        error: "server_error",
        description: "OAuth Failed: access_denied",
        state: "s-2",
        attempt: undefined,
        app: undefined
      } as const)
    )
    assert.deepStrictEqual(
      ConnectCallback.parseQuery("authentication_id=7&zapier_app=sheets&app=ignored", "zapier_app"),
      Either.right({
        _tag: "Success",
        authenticationId: "7",
        service: undefined,
        state: undefined,
        attempt: undefined,
        app: Domain.AppId.make("sheets")
      } as const)
    )
    assert.deepStrictEqual(
      ConnectCallback.parseQuery("authentication_id=7&connect_attempt=n-1&app=slack"),
      Either.right({
        _tag: "Success",
        authenticationId: "7",
        service: undefined,
        state: undefined,
        attempt: "n-1",
        app: Domain.AppId.make("slack")
      } as const)
    )
  })

  const refused: ReadonlyArray<readonly [string, string, string]> = [
    ["", "the query is empty", "empty"],
    ["authentication_id=1&authentication_id=2", "the parameter authentication_id is repeated", "repeated id"],
    ["authentication_id=1&state=a&state=b", "the parameter state is repeated", "repeated state"],
    ["authentication_id=1&app=slack&app=slack", "the parameter app is repeated", "repeated app"],
    [
      "authentication_id=1&connect_attempt=a&connect_attempt=b",
      "the parameter connect_attempt is repeated",
      "repeated attempt"
    ],
    ["authentication_id=%E0%A4%A", "the query has an invalid percent-encoding", "bad percent-encoding"],
    ["authentication_id=", "the parameter authentication_id is empty", "empty value"],
    ["authentication_id=12%0A34", "the parameter authentication_id has characters it may not have", "newline"],
    ["authentication_id=12%2034", "the parameter authentication_id has characters it may not have", "space"],
    [
      `authentication_id=${"9".repeat(129)}`,
      "the parameter authentication_id is longer than 128 characters",
      "long id"
    ],
    [`authentication_id=1&state=${"s".repeat(513)}`, "the parameter state is longer than 512 characters", "long state"],
    [`authentication_id=1&pad=${"p".repeat(8200)}`, "the query is longer than 8192 characters", "long query"],
    [
      `authentication_id=1${Array.from({ length: 16 }, (_, i) => `&p${i}=1`).join("")}`,
      "the query has more than 16 parameters",
      "too many"
    ],
    ["authentication_id=1&error=access_denied", "the query has both authentication_id and error", "both"],
    ["state=abc&app=slack", "the query has neither authentication_id nor error", "neither"],
    ["authentication_id=1&error_description=x", "the query has error_description without error", "stray desc"]
  ]
  for (const [query, problem, name] of refused) {
    it(`refuses ${name}`, () => {
      const parsed = ConnectCallback.parseQuery(query)
      assert.isTrue(Either.isLeft(parsed))
      assert.strictEqual(Either.isLeft(parsed) ? parsed.left.problem : "", problem)
    })
  }

  it("lets line breaks through in error_description but not other control characters", () => {
    assert.isTrue(Either.isRight(ConnectCallback.parseQuery("error=server_error&error_description=a%0Ab")))
    assert.isTrue(Either.isLeft(ConnectCallback.parseQuery("error=server_error&error_description=a%00b")))
  })

  it("toCallback gives completeConnection Connect UI's wire names, without the partner's app", () => {
    const parsed = ConnectCallback.parseQuery(
      "authentication_id=42&service=SlackAPI&state=s&app=slack&connect_attempt=n"
    )
    assert.deepStrictEqual(
      Either.map(parsed, ConnectCallback.toCallback),
      Either.right({
        authentication_id: "42",
        service: "SlackAPI",
        state: "s",
        connect_attempt: "n"
      })
    )
    const denied = ConnectCallback.parseQuery("error=access_denied")
    assert.deepStrictEqual(Either.map(denied, ConnectCallback.toCallback), Either.right({ error: "access_denied" }))
  })

  it("keeps the app of a malformed query when it alone can be read (for the refusal)", () => {
    const parsed = ConnectCallback.parseQuery("app=slack&state=abc")
    assert.deepStrictEqual(Either.isLeft(parsed) ? parsed.left.app : undefined, Domain.AppId.make("slack"))
  })
})

// ---------------------------------------------------------------------------------------------------------------
// The handler over HTTP
// ---------------------------------------------------------------------------------------------------------------

describe("ConnectCallback.handler on a NodeHttpServer, over the live client and FakeZapierServer", () => {
  it.effect("success redirect: the connection is verified, stored, and the partner's redirect is answered", () =>
    withPartner(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const store = yield* ConnectionStore.ConnectionStore
        const { location, link, state } = yield* approvedCallback(alice)
        assert.isTrue(link.url.includes("redirect_uri="))
        assert.strictEqual(new URL(location).searchParams.get("app"), "slack")
        assert.strictEqual(new URL(location).searchParams.get("service"), "SlackAPI")

        const answer = yield* visit(location, "sess-alice")
        const id = connectedWith(answer)
        assert.strictEqual(new URL(answer.location ?? "", "http://p").searchParams.get("app"), "slack")
        assert.strictEqual(answer.headers["cache-control"], "no-store")
        assert.strictEqual(answer.headers["referrer-policy"], "no-referrer")

        const [connection] = yield* zapier.connections(alice, sample.slack)
        assert.strictEqual(id, connection!.id)
        const stored = yield* store.get(alice, sample.slack)
        assert.strictEqual(Option.getOrThrow(stored).connectionId, connection!.id)
        assert.strictEqual(DateTime.toEpochMillis(Option.getOrThrow(stored).verifiedAt), NOW)
        assert.isTrue(Option.getOrThrow(yield* store.findAttempt(state)).closed)
        const actions = yield* EmbeddedActions.EmbeddedActions
        assert.strictEqual((yield* actions.ensureConnection(alice, sample.slack)).id, connection!.id)
      })
    )
  )

  it.effect("error redirect (the user denied): ConnectFailed denied, nothing stored, the spent link closed", () =>
    withPartner(
      Effect.gen(function* () {
        const base = yield* partnerUrl
        const { link } = yield* connectLink(alice, sample.slack, `${base}/zapier/callback?app=slack`)
        const location = yield* decideInConnectUi(link.url, "deny")
        const query = new URL(location).searchParams
        assert.strictEqual(query.get("error"), "server_error")
        const state = query.get("state") ?? ""
        const answer = yield* visit(location, "sess-alice")
        assert.strictEqual(failedWith(answer), "denied")
        assert.strictEqual(answer.headers["x-failure-app"], "slack")
        // No connection was stored; the attempt (whose single-use token Connect UI consumed) is closed.
        assert.strictEqual(
          yield* snapshot(alice, sample.slack, [state]),
          JSON.stringify({ connection: null, attempts: [true], latest: [state, true] })
        )
        assert.strictEqual((yield* (yield* FakeZapier.FakeZapier).connections(alice, sample.slack)).length, 0)
      })
    )
  )

  it.effect("forged state, or no attempt at all: refused, no stored change; the real callback still works", () =>
    withPartner(
      Effect.gen(function* () {
        const { location, state } = yield* approvedCallback(alice)
        const before = yield* snapshot(alice, sample.slack, [state])
        assert.strictEqual(before, JSON.stringify({ connection: null, attempts: [false], latest: [state, false] }))

        const forged = withQuery(location, (q) => q.set("state", "forged-state-0123456789abcdef"))
        assert.strictEqual(failedWith(yield* visit(forged, "sess-alice")), "state_mismatch")
        // A forged state on a route that must find the app from the state alone.
        const noApp = withQuery(forged, (q) => q.delete("app"))
        assert.strictEqual(failedWith(yield* visit(noApp, "sess-alice")), "state_mismatch")
        // Bob has no attempt: Alice's callback without its state still names her attempt, and is refused.
        const stateless = withQuery(location, (q) => q.delete("state"))
        assert.strictEqual(failedWith(yield* visit(stateless, "sess-bob")), "other_user")
        // Without any proof of its attempt (no state, no connect_attempt): unbound, nothing looked up.
        const unbound = withQuery(stateless, (q) => q.delete("connect_attempt"))
        assert.strictEqual(failedWith(yield* visit(unbound, "sess-alice")), "unbound")
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)
        assert.strictEqual(
          yield* snapshot(bob, sample.slack, []),
          JSON.stringify({ connection: null, attempts: [], latest: null })
        )

        assert.isString(connectedWith(yield* visit(location, "sess-alice")))
      })
    )
  )

  it.effect("another user's session: refused (other_user), no stored change for either; the owner completes it", () =>
    withPartner(
      Effect.gen(function* () {
        const { location, state } = yield* approvedCallback(alice)
        const before = yield* snapshot(alice, sample.slack, [state])
        assert.strictEqual(failedWith(yield* visit(location, "sess-bob")), "other_user")
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)
        assert.strictEqual(
          yield* snapshot(bob, sample.slack, []),
          JSON.stringify({ connection: null, attempts: [], latest: null })
        )
        // Not signed in at all: the partner's own failure, nothing looked up.
        const anonymous = yield* visit(location)
        assert.deepStrictEqual([anonymous.status, anonymous.body], [401, "Sign in first"])
        assert.strictEqual(anonymous.headers["cache-control"], "no-store")
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)

        assert.isString(connectedWith(yield* visit(location, "sess-alice")))
      })
    )
  )

  it.effect("a replayed callback is refused (replay) with no stored change; concurrent duplicates complete once", () =>
    withPartner(
      Effect.gen(function* () {
        const { location, state } = yield* approvedCallback(alice)
        const id = connectedWith(yield* visit(location, "sess-alice"))
        const after = yield* snapshot(alice, sample.slack, [state])
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(failedWith(yield* visit(location, "sess-alice")), "replay")
        // Without the state (Zapier need not echo it), the connect_attempt names the closed attempt: a replay.
        assert.strictEqual(
          failedWith(
            yield* visit(
              withQuery(location, (q) => q.delete("state")),
              "sess-alice"
            )
          ),
          "replay"
        )
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), after)
        assert.include(after, id ?? "no id")

        // Two copies of a fresh callback (Bob's) at once: one completes, the other is a replay.
        const second = yield* approvedCallback(bob)
        const answers = yield* Effect.all([visit(second.location, "sess-bob"), visit(second.location, "sess-bob")], {
          concurrency: "unbounded"
        })
        const paths = answers.map((a) => new URL(a.location ?? "", "http://p").pathname).sort()
        assert.deepStrictEqual(paths, ["/connect-failed", "/connected"])
        assert.strictEqual(
          answers.map((a) => new URL(a.location ?? "", "http://p").searchParams.get("reason")).find((r) => r !== null),
          "replay"
        )
      })
    )
  )

  it.effect("malformed, oversize and duplicated parameters: ConnectFailed malformed, no stored change", () =>
    withPartner(
      Effect.gen(function* () {
        const base = yield* partnerUrl
        const { location, state } = yield* approvedCallback(alice)
        const before = yield* snapshot(alice, sample.slack, [state])
        const raw = (suffix: string) => `${location}${suffix}`
        const variants: ReadonlyArray<readonly [string, string]> = [
          ["two authentication_id values", raw("&authentication_id=999")],
          ["two states", raw("&state=another-state")],
          ["two app values", raw("&app=slack")],
          ["an oversize authentication_id", withQuery(location, (q) => q.set("authentication_id", "1".repeat(200)))],
          ["an oversize state", withQuery(location, (q) => q.set("state", "s".repeat(600)))],
          ["an oversize query", raw(`&pad=${"p".repeat(9000)}`)],
          ["too many parameters", raw(Array.from({ length: 20 }, (_, i) => `&x${i}=1`).join(""))],
          ["a bad percent-encoding", raw("&service2=%E0%A4%A")],
          ["a control character", withQuery(location, (q) => q.set("authentication_id", "12\n34"))],
          ["both an id and an error", raw("&error=access_denied")],
          ["neither an id nor an error", withQuery(location, (q) => q.delete("authentication_id"))],
          ["an empty value", withQuery(location, (q) => q.set("authentication_id", ""))],
          ["an empty query", `${base}/zapier/callback`],
          ["an app that is no app id", withQuery(location, (q) => q.set("app", " "))]
        ]
        for (const [name, url] of variants) {
          const answer = yield* visit(url, "sess-alice")
          assert.strictEqual(failedWith(answer), "malformed", name)
          assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before, name)
        }
        // The problem is named for the partner (without quoting the input).
        const repeated = new URL((yield* visit(raw("&authentication_id=999"), "sess-alice")).location ?? "", base)
        assert.strictEqual(repeated.searchParams.get("problem"), "the parameter authentication_id is repeated")
        const capture = yield* Captured
        assert.isTrue(
          capture.lines.some((l) => l.includes("Zapier connect callback refused") && l.includes("malformed"))
        )

        // The attempt was untouched by all of that: the real callback completes it.
        assert.isString(connectedWith(yield* visit(location, "sess-alice")))
      })
    )
  )

  describe("which app", () => {
    it.effect("from the state alone (no app parameter), and without a state from the app parameter", () =>
      withPartner(
        Effect.gen(function* () {
          const fromState = yield* approvedCallback(alice, "/zapier/callback")
          assert.isNull(new URL(fromState.location).searchParams.get("app"))
          assert.isString(connectedWith(yield* visit(fromState.location, "sess-alice")))

          const fromParam = yield* approvedCallback(bob)
          const stateless = withQuery(fromParam.location, (q) => q.delete("state"))
          assert.isString(connectedWith(yield* visit(stateless, "sess-bob")))
        })
      )
    )

    it.effect("from the connect_attempt alone (Zapier echoes no state, no app parameter)", () =>
      withPartner(
        Effect.gen(function* () {
          const { location, link } = yield* approvedCallback(alice, "/zapier/callback")
          const stateless = withQuery(location, (q) => q.delete("state"))
          assert.strictEqual(new URL(stateless).searchParams.get("connect_attempt"), link.state)
          assert.isString(connectedWith(yield* visit(stateless, "sess-alice")))
        })
      )
    )

    it.effect("no state and no app: refused as malformed, with the fix in the problem; no stored change", () =>
      withPartner(
        Effect.gen(function* () {
          const { location, state } = yield* approvedCallback(alice, "/zapier/callback")
          const before = yield* snapshot(alice, sample.slack, [state])
          const answer = yield* visit(
            withQuery(location, (q) => {
              q.delete("state")
              q.delete("connect_attempt")
            }),
            "sess-alice"
          )
          assert.strictEqual(failedWith(answer), "malformed")
          assert.strictEqual(answer.headers["x-failure-app"], ConnectCallback.unknownApp)
          assert.include(new URL(answer.location ?? "", "http://p").searchParams.get("problem") ?? "", "app=<app id>")
          assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)
        })
      )
    )

    it.effect("from the services option (Zapier's service key), without state or app parameter", () =>
      withPartner(
        Effect.gen(function* () {
          const { location } = yield* approvedCallback(alice, "/zapier/callback/by-service")
          const stateless = withQuery(location, (q) => {
            q.delete("state")
            q.delete("connect_attempt")
          })
          assert.strictEqual(new URL(stateless).searchParams.get("service"), "SlackAPI")
          // the service names the app, but the callback proves no attempt: refused, nothing touched
          assert.strictEqual(failedWith(yield* visit(stateless, "sess-alice")), "unbound")
          assert.isString(
            connectedWith(
              yield* visit(
                withQuery(location, (q) => q.delete("state")),
                "sess-alice"
              )
            )
          )
          // the same with the services given as a Map
          const viaMap = yield* approvedCallback(bob, "/zapier/callback/by-service-map")
          const mapped = withQuery(viaMap.location, (q) => q.delete("state"))
          assert.isString(connectedWith(yield* visit(mapped, "sess-bob")))
        })
      )
    )

    it.effect("a route for one app refuses a callback naming another (other_app), with no stored change", () =>
      withPartner(
        Effect.gen(function* () {
          const sheets = yield* approvedCallback(alice, "/zapier/callback/slack?app=google-sheets", sample.sheets)
          const before = yield* snapshot(alice, sample.sheets, [sheets.state])
          const answer = yield* visit(sheets.location, "sess-alice")
          assert.strictEqual(failedWith(answer), "other_app")
          assert.strictEqual(answer.headers["x-failure-app"], "slack")
          // Without the app parameter the state names a Google Sheets attempt: still not this route's app.
          assert.strictEqual(
            failedWith(
              yield* visit(
                withQuery(sheets.location, (q) => q.delete("app")),
                "sess-alice"
              )
            ),
            "other_app"
          )
          assert.strictEqual(yield* snapshot(alice, sample.sheets, [sheets.state]), before)
          assert.strictEqual(
            yield* snapshot(alice, sample.slack, []),
            JSON.stringify({ connection: null, attempts: [], latest: null })
          )
        })
      )
    )
  })

  it.effect("a cross-site error link without proof: refused as unbound, the attempt untouched, nothing quoted", () =>
    withPartner(
      Effect.gen(function* () {
        const base = yield* partnerUrl
        const { location, state } = yield* approvedCallback(alice)
        const before = yield* snapshot(alice, sample.slack, [state])
        const forged = `${base}/zapier/callback?app=slack&error=access_denied&error_description=Call+%2B1+555+0100`
        const answer = yield* visit(forged, "sess-alice")
        assert.strictEqual(failedWith(answer), "unbound")
        assert.notInclude(answer.location ?? "", "555")
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)
        // the user's real callback still completes the attempt
        assert.isString(connectedWith(yield* visit(location, "sess-alice")))
      })
    )
  )

  it.effect("service=constructor, __proto__ or toString maps to no app: malformed, never a 500", () =>
    withPartner(
      Effect.gen(function* () {
        const base = yield* partnerUrl
        const { state } = yield* approvedCallback(alice, "/zapier/callback/by-service")
        const before = yield* snapshot(alice, sample.slack, [state])
        for (const service of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
          const answer = yield* visit(
            `${base}/zapier/callback/by-service?authentication_id=1&service=${service}`,
            "sess-alice"
          )
          assert.strictEqual(answer.status, 303, service)
          assert.strictEqual(failedWith(answer), "malformed", service)
        }
        assert.strictEqual(yield* snapshot(alice, sample.slack, [state]), before)
      })
    )
  )

  it.effect("reconnect over HTTP: expired → reconnect link → Connect UI → callback → same id, valid, re-verified", () =>
    withPartner(
      Effect.gen(function* () {
        const zapier = yield* FakeZapier.FakeZapier
        const store = yield* ConnectionStore.ConnectionStore
        const base = yield* partnerUrl
        const first = yield* approvedCallback(alice)
        const id = connectedWith(yield* visit(first.location, "sess-alice"))
        const stored = Option.getOrThrow(yield* store.get(alice, sample.slack))
        assert.strictEqual(stored.connectionId, id)

        // Zapier marks the connection expired; a minute later the user comes back.
        yield* zapier.expireConnection(stored.connectionId)
        yield* TestClock.adjust("1 minute")
        const { required, link } = yield* connectLink(alice, sample.slack, `${base}/zapier/callback?app=slack`)
        assert.strictEqual(required.reason, "expired")
        assert.strictEqual(link.reconnect, stored.connectionId)
        assert.strictEqual(new URL(link.url).searchParams.get("reconnect_id"), stored.connectionId)

        const location = yield* decideInConnectUi(link.url)
        assert.strictEqual(new URL(location).searchParams.get("authentication_id"), stored.connectionId)
        assert.strictEqual(connectedWith(yield* visit(location, "sess-alice")), stored.connectionId)

        const again = Option.getOrThrow(yield* store.get(alice, sample.slack))
        assert.strictEqual(again.connectionId, stored.connectionId)
        assert.strictEqual(DateTime.toEpochMillis(again.storedAt), DateTime.toEpochMillis(stored.storedAt))
        assert.strictEqual(DateTime.toEpochMillis(again.verifiedAt), NOW + 60_000)
        assert.isAbove(DateTime.toEpochMillis(again.verifiedAt), DateTime.toEpochMillis(stored.verifiedAt))
        const listed = yield* zapier.connections(alice, sample.slack)
        assert.deepStrictEqual(
          listed.map((c) => [c.id, c.isExpired]),
          [[stored.connectionId, false]]
        )
        const connects = (yield* zapier.ledger).connects
        assert.deepStrictEqual(
          connects.map((c) => [c.outcome, c.connection, c.reconnect ?? false]),
          [
            ["approved", stored.connectionId, false],
            ["approved", stored.connectionId, true]
          ]
        )
        const actions = yield* EmbeddedActions.EmbeddedActions
        assert.strictEqual((yield* actions.ensureConnection(alice, sample.slack)).id, stored.connectionId)
      })
    )
  )
})
