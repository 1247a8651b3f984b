import { assert, describe, it } from "@effect/vitest"
import { Domain, Errors } from "@effect-zapier/core"
import { Cause, DateTime, Duration, Effect, Either, Redacted, Schema } from "effect"

const decodeCallback = Schema.decodeUnknownEither(Domain.ConnectCallback)

describe("Domain.EndUser", () => {
  it("trims ids when decoding and refuses empty ones", () => {
    const user = Schema.decodeUnknownSync(Domain.EndUser)({ userId: "  u-1 ", tenantId: "acme" })
    assert.strictEqual(user.userId, "u-1")
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(Domain.EndUser)({ userId: "   ", tenantId: "acme" })))
    assert.throws(() => Domain.EndUser.make({ userId: "", tenantId: "acme" }))
  })

  it("has a key that cannot collide across tenant/user boundaries", () => {
    const a = Domain.EndUser.make({ userId: "b:c", tenantId: "a" })
    const b = Domain.EndUser.make({ userId: "c", tenantId: "a:b" })
    assert.notStrictEqual(a.key, b.key)
  })
})

describe("Domain.ConnectCallback", () => {
  it("decodes the success redirect", () => {
    const outcome = decodeCallback({ authentication_id: "12345", service: "SlackAPI", extra: "ignored" })
    assert.deepStrictEqual(
      outcome,
      Either.right({
        _tag: "Approved",
        connectionId: Domain.ConnectionId.make("12345"),
        service: "SlackAPI",
        via: "redirect"
      })
    )
  })

  it("decodes the popup message with a numeric authId", () => {
    const outcome = decodeCallback({ type: "authenticationSuccess", authId: 987 })
    assert.deepStrictEqual(
      outcome,
      Either.right({ _tag: "Approved", connectionId: Domain.ConnectionId.make("987"), via: "popup" })
    )
  })

  it("decodes the error redirect and the popup error", () => {
    assert.deepStrictEqual(
      decodeCallback({ error: "access_denied", error_description: "User not found", state: "s1" }),
      Either.right({
        _tag: "Denied",
        error: "access_denied",
        description: "User not found",
        state: "s1",
        via: "redirect"
      })
    )
    assert.deepStrictEqual(
      decodeCallback({ type: "authenticationError", error: { error: "server_error" } }),
      Either.right({ _tag: "Denied", error: "server_error", via: "popup" })
    )
  })

  it("reads the attempt parameter the library put into the redirect_uri", () => {
    assert.deepStrictEqual(
      decodeCallback({ authentication_id: "1", [Domain.attemptParameter]: "nonce-1" }),
      Either.right({
        _tag: "Approved",
        connectionId: Domain.ConnectionId.make("1"),
        attempt: "nonce-1",
        via: "redirect"
      })
    )
    assert.deepStrictEqual(
      decodeCallback({ error: "access_denied", [Domain.attemptParameter]: "nonce-2" }),
      Either.right({ _tag: "Denied", error: "access_denied", attempt: "nonce-2", via: "redirect" })
    )
    assert.isTrue(Either.isLeft(decodeCallback({ authentication_id: "1", [Domain.attemptParameter]: "x".repeat(513) })))
  })

  it("refuses malformed and oversize callbacks", () => {
    assert.isTrue(Either.isLeft(decodeCallback({})))
    assert.isTrue(Either.isLeft(decodeCallback({ authentication_id: "" })))
    assert.isTrue(Either.isLeft(decodeCallback({ authentication_id: "1", state: "x".repeat(513) })))
    assert.isTrue(Either.isLeft(decodeCallback("authentication_id=1")))
    assert.isTrue(Either.isLeft(decodeCallback({ type: "somethingElse", authId: 1 })))
  })
})

describe("Domain secrets", () => {
  it.effect("never print an access token or a Connect link's token", () =>
    Effect.gen(function* () {
      const canary = "CANARY-access-token-7f3a"
      const token = Domain.AccessToken.make({
        value: Redacted.make(canary),
        expiresAt: yield* DateTime.now,
        scope: "external"
      })
      const link = Domain.ConnectLink.make({
        url: `https://connect.zapier.com/to/slack?token=${canary}`,
        app: Domain.AppId.make("slack"),
        expiresAt: yield* DateTime.now
      })
      for (const printed of [String(token), JSON.stringify(token), String(link), JSON.stringify(link)]) {
        assert.notInclude(printed, canary)
      }
      const error = new Errors.ConnectionRequired({ app: Domain.AppId.make("slack"), reason: "missing", link })
      assert.notInclude(JSON.stringify(error), canary)
      assert.notInclude(Cause.pretty(Cause.fail(error)), canary)
      assert.include(link.url, canary, "the link itself still carries the token for the browser")
    })
  )
})

describe("Errors", () => {
  it("say what to do", () => {
    const error = new Errors.RateLimited({ endpoint: "GET /v2/actions", retryAfter: Duration.seconds(60) })
    assert.include(error.message, "retry after 1m")
    assert.isTrue(Errors.isZapierError(error))
    assert.isFalse(Errors.isZapierError(new Error("x")))
    const failed = new Errors.ActionRunFailed({
      runId: Domain.ActionRunId.make("r1"),
      errors: [Domain.RunError.make({ code: "authentication", title: "Auth expired" })]
    })
    assert.isTrue(failed.needsReconnect)
    assert.include(failed.message, "reconnected")
  })

  it("NotFound says what to check for the kind of resource, and mentions run retention only for runs", () => {
    const message = (resource: string) => new Errors.NotFound({ endpoint: "GET /x", resource }).message
    assert.include(message("action run r-1"), "7 days")
    for (const resource of ["app slack", "action a-1", "input channel of action a-1", "connection c-1", "thing"]) {
      assert.notInclude(message(resource), "7 days", resource)
      assert.include(message(resource), resource)
    }
    assert.include(message("app slack"), "app id")
    assert.include(message("action a-1"), "by its key")
    assert.include(message("input channel of action a-1"), "field id")
  })

  it("round-trip through the ZapierError schema", () => {
    const error = new Errors.PollTimeout({
      runId: Domain.ActionRunId.make("r1"),
      waited: Duration.seconds(180),
      lastStatus: "waiting"
    })
    const encoded = Schema.encodeSync(Errors.ZapierError)(error)
    const decoded = Schema.decodeUnknownSync(Errors.ZapierError)(JSON.parse(JSON.stringify(encoded)))
    assert.deepStrictEqual(decoded, error)
  })
})
