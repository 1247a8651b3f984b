import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, Connections, Domain, EmbeddedActions, Errors, Polling } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import { Duration, Effect, Either, Fiber, Layer, Option, TestClock } from "effect"

const { sample } = FakeZapier
const user = sample.user
const other = Domain.EndUser.make({ userId: "u-7", tenantId: "acme" })

/** A fresh model, store and program per test. */
const TestLayer = (seed: FakeZapier.Seed = FakeZapier.sampleSeed) =>
  EmbeddedActions.layer.pipe(Layer.provideMerge(Layer.merge(FakeZapier.layer(seed), ConnectionStore.layerMemory)))

const services = Effect.all({
  actions: EmbeddedActions.EmbeddedActions,
  zapier: FakeZapier.FakeZapier,
  store: ConnectionStore.ConnectionStore
})

/** Runs an effect that polls to completion, driving the TestClock far enough ahead. */
const settle = <A, E, R>(effect: Effect.Effect<A, E, R>, ahead: Duration.DurationInput = "10 minutes") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(ahead)
    return yield* Fiber.join(fiber)
  })

const request = (overrides: Partial<EmbeddedActions.RunRequest> = {}): EmbeddedActions.RunRequest => ({
  user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hello" },
  ...overrides
})

/** Connects `who` to Slack through the whole Connect flow and returns the connection. */
const connectThroughUi = (who: Domain.EndUser, mode: "redirect" | "popup" = "redirect") =>
  Effect.gen(function* () {
    const { actions, zapier } = yield* services
    const required = yield* Effect.flip(actions.ensureConnection(who, sample.slack))
    if (required._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${required._tag}`)
    const callback = yield* zapier.approveConnect(required.link!, { mode })
    return yield* actions.completeConnection(who, sample.slack, callback)
  })

describe("EmbeddedActions.run", () => {
  it.effect("without a connection: ConnectionRequired whose link returns to the request's redirectUri and theme", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const failed = yield* Effect.flip(
        actions.run(request({ redirectUri: "https://partner.example/zapier/callback?app=slack", theme: "dark" }))
      )
      if (failed._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${failed._tag}`)
      const link = new URL(failed.link!.url)
      assert.strictEqual(link.searchParams.get("theme"), "dark")
      const redirect = new URL(link.searchParams.get("redirect_uri") ?? "")
      assert.strictEqual(`${redirect.origin}${redirect.pathname}`, "https://partner.example/zapier/callback")
      assert.strictEqual(redirect.searchParams.get("app"), "slack")
      assert.strictEqual(redirect.searchParams.get(Domain.attemptParameter), failed.link!.state)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("runs an action end to end once the user is connected", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const connection = yield* connectThroughUi(user)
      const result = yield* settle(actions.run(request()))
      assert.deepStrictEqual(result.results, [
        { ok: true, channel: "#general", text: "Hello", ts: "1711900000.000100" }
      ])
      const ledger = yield* zapier.ledger
      assert.strictEqual(ledger.runs.length, 1)
      assert.strictEqual(ledger.runs[0]!.connection, connection.id)
      assert.strictEqual(ledger.runs[0]!.runId, result.runId)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("looks the action up once per run, with a fresh id each time", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* settle(actions.run(request()))
      yield* settle(actions.run(request()))
      yield* settle(actions.run(request()))
      const ledger = yield* zapier.ledger
      assert.strictEqual(ledger.lookups.length, 3)
      const actionIds = new Set(ledger.runs.map((r) => r.actionId))
      assert.strictEqual(actionIds.size, 3, "every run used its own fresh action id")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails ActionNotFound for an unknown key, and for a known key of another type", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const unknown = yield* Effect.flip(actions.run(request({ action: Domain.ActionKey.make("no_such_action") })))
      assert.strictEqual(unknown._tag, "ActionNotFound")
      const wrongType = yield* Effect.flip(actions.run(request({ actionType: "SEARCH" })))
      assert.strictEqual(wrongType._tag, "ActionNotFound")
      assert.strictEqual((yield* zapier.ledger).runs.length, 0)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails ActionRunFailed carrying Zapier's errors", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const error = yield* settle(Effect.flip(actions.run(request({ action: sample.sendDirectMessage }))))
      assert.strictEqual(error._tag, "ActionRunFailed")
      if (error._tag !== "ActionRunFailed") return
      assert.strictEqual(error.errors.length, 1)
      assert.strictEqual(error.errors[0]!.code, "user")
      assert.strictEqual(error.errors[0]!.title, "User not found")
      assert.isFalse(error.needsReconnect)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails PollTimeout at the deadline, and a later await resumes the same run", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed("5 minutes", ["done"])
      )
      const timeout = yield* settle(Effect.flip(actions.run(request({ timeout: Duration.seconds(60) }))), "61 seconds")
      assert.strictEqual(timeout._tag, "PollTimeout")
      if (timeout._tag !== "PollTimeout") return
      assert.strictEqual(timeout.lastStatus, "waiting")
      assert.strictEqual(Duration.toSeconds(timeout.waited), 60)
      const resumed = yield* settle(actions.await(user, timeout.runId, { timeout: "10 minutes" }))
      assert.strictEqual(resumed.runId, timeout.runId)
      assert.deepStrictEqual(resumed.results, ["done"])
      assert.strictEqual((yield* zapier.ledger).runs.length, 1, "resuming does not create another run")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("runs an app without authentication with connection: null", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const result = yield* settle(
        actions.run(
          request({ app: sample.formatter, action: sample.uppercase, inputs: { text: "hi" }, connection: null })
        )
      )
      assert.deepStrictEqual(result.results, [{ output: "HI" }])
    }).pipe(Effect.provide(TestLayer()))
  )
})

describe("EmbeddedActions.ensureConnection", () => {
  it.effect("reuses the stored connection while it stays valid, even when a newer one exists", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const first = yield* zapier.addConnection(user, sample.slack)
      yield* store.set(user, sample.slack, first.id)
      yield* zapier.addConnection(user, sample.slack)
      const chosen = yield* actions.ensureConnection(user, sample.slack)
      assert.strictEqual(chosen.id, first.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("chooses the newest valid connection when none is stored, and stores it", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const newest = yield* zapier.addConnection(user, sample.slack)
      yield* zapier.addConnection(user, sample.slack, { isExpired: true })
      const chosen = yield* actions.ensureConnection(user, sample.slack)
      assert.strictEqual(chosen.id, newest.id)
      const stored = yield* store.get(user, sample.slack)
      assert.strictEqual(Option.getOrThrow(stored).connectionId, newest.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("falls back to a valid connection when the stored one is no longer listed", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const valid = yield* zapier.addConnection(user, sample.slack)
      yield* store.set(user, sample.slack, Domain.ConnectionId.make("999999"))
      assert.strictEqual((yield* actions.ensureConnection(user, sample.slack)).id, valid.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails ConnectionRequired(missing) with a Connect link when the user has no connection", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const error = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      assert.strictEqual(error._tag, "ConnectionRequired")
      if (error._tag !== "ConnectionRequired") return
      assert.strictEqual(error.reason, "missing")
      const url = new URL(error.link!.url)
      assert.strictEqual(url.pathname, `/to/${sample.slack}`)
      assert.isTrue((url.searchParams.get("token") ?? "").length > 0)
      assert.isNull(url.searchParams.get("reconnect_id"))
      assert.strictEqual(url.searchParams.get("state"), error.link!.state)
      assert.isAtLeast(error.link!.state!.length, 40, "the state is unguessable")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails ConnectionRequired(expired) with a reconnect link when the stored connection expired", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const connection = yield* zapier.addConnection(user, sample.slack)
      yield* store.set(user, sample.slack, connection.id)
      yield* zapier.expireConnection(connection.id)
      const error = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      assert.strictEqual(error._tag, "ConnectionRequired")
      if (error._tag !== "ConnectionRequired") return
      assert.strictEqual(error.reason, "expired")
      assert.strictEqual(error.link!.reconnect, connection.id)
      assert.strictEqual(new URL(error.link!.url).searchParams.get("reconnect_id"), connection.id)
      // Reconnecting keeps the id and makes it valid again.
      const callback = yield* zapier.approveConnect(error.link!)
      const reconnected = yield* actions.completeConnection(user, sample.slack, callback)
      assert.strictEqual(reconnected.id, connection.id)
      assert.isFalse(reconnected.isExpired)
      assert.strictEqual((yield* actions.ensureConnection(user, sample.slack)).id, connection.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("passes a redirect URI into the link, with the attempt parameter added and its own query kept", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const error = yield* Effect.flip(
        actions.ensureConnection(user, sample.slack, {
          redirectUri: "https://partner.example/zapier/callback?app=slack&connect_attempt=stale#top"
        })
      )
      if (error._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${error._tag}`)
      const state = error.link!.state!
      assert.strictEqual(
        new URL(error.link!.url).searchParams.get("redirect_uri"),
        `https://partner.example/zapier/callback?app=slack&connect_attempt=${encodeURIComponent(state)}#top`
      )
    }).pipe(Effect.provide(TestLayer()))
  )
})

describe("EmbeddedActions.completeConnection", () => {
  it.effect("accepts the redirect callback and stores the connection", () =>
    Effect.gen(function* () {
      const { store } = yield* services
      const connection = yield* connectThroughUi(user, "redirect")
      assert.isFalse(connection.isExpired)
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, connection.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("accepts the popup callback and stores the connection", () =>
    Effect.gen(function* () {
      const { store } = yield* services
      const connection = yield* connectThroughUi(user, "popup")
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, connection.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses an error callback", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(required._tag)
      const callback = yield* zapier.denyConnect(required.link!)
      const error = yield* Effect.flip(actions.completeConnection(user, sample.slack, callback))
      assert.strictEqual(error._tag, "ConnectFailed")
      if (error._tag !== "ConnectFailed") return
      assert.strictEqual(error.reason, "denied")
      assert.strictEqual(error.error, "server_error")
      assert.isTrue(Option.isNone(yield* store.get(user, sample.slack)))
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses another user's connection id", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const theirs = yield* zapier.addConnection(other, sample.slack)
      const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(required._tag)
      const error = yield* settle(
        Effect.flip(
          actions.completeConnection(user, sample.slack, {
            authentication_id: theirs.id,
            service: "SlackAPI",
            state: required.link!.state
          })
        ),
        "10 seconds"
      )
      assert.strictEqual(error._tag, "ConnectFailed")
      if (error._tag !== "ConnectFailed") return
      assert.strictEqual(error.reason, "connection_not_found")
      assert.isTrue(Option.isNone(yield* store.get(user, sample.slack)))
      // the attempt is still open: the user's real callback completes it
      const mine = yield* zapier.approveConnect(required.link!)
      assert.isFalse((yield* actions.completeConnection(user, sample.slack, mine)).isExpired)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses an expired connection id", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const expired = yield* zapier.addConnection(user, sample.slack, { isExpired: true })
      yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      const error = yield* settle(
        Effect.flip(
          actions.completeConnection(user, sample.slack, { type: "authenticationSuccess", authId: expired.id })
        )
      )
      assert.strictEqual(error._tag === "ConnectFailed" ? error.reason : error._tag, "connection_expired")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses a replayed callback, a callback with no open attempt, and a malformed one", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const noAttempt = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, { type: "authenticationSuccess", authId: "1" })
      )
      assert.strictEqual(noAttempt._tag === "ConnectFailed" ? noAttempt.reason : noAttempt._tag, "no_attempt")
      const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(required._tag)
      const callback = yield* zapier.approveConnect(required.link!)
      yield* actions.completeConnection(user, sample.slack, callback)
      const replay = yield* Effect.flip(actions.completeConnection(user, sample.slack, callback))
      assert.strictEqual(replay._tag === "ConnectFailed" ? replay.reason : replay._tag, "replay")
      const malformed = yield* Effect.flip(actions.completeConnection(user, sample.slack, { nonsense: true }))
      assert.strictEqual(malformed._tag === "ConnectFailed" ? malformed.reason : malformed._tag, "malformed")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses a callback whose state belongs to another user's link, or is unknown", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const theirs = yield* Effect.flip(actions.ensureConnection(other, sample.slack))
      if (theirs._tag !== "ConnectionRequired") return assert.fail(theirs._tag)
      yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      const callback = yield* zapier.approveConnect(theirs.link!)
      const stolen = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, { ...callback, state: theirs.link!.state })
      )
      assert.strictEqual(stolen._tag === "ConnectFailed" ? stolen.reason : stolen._tag, "other_user")
      const forged = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, { error: "access_denied", state: "forged-state" })
      )
      assert.strictEqual(forged._tag === "ConnectFailed" ? forged.reason : forged._tag, "state_mismatch")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("refuses a callback after the link expired", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const required = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(required._tag)
      const conn = yield* zapier.addConnection(user, sample.slack)
      yield* TestClock.adjust("7 minutes")
      const error = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          authentication_id: conn.id,
          service: "SlackAPI",
          state: required.link!.state
        })
      )
      assert.strictEqual(error._tag === "ConnectFailed" ? error.reason : error._tag, "attempt_expired")
    }).pipe(Effect.provide(TestLayer()))
  )
})

/**
 * The program over a `Connections` that hides each connection from the first `lag` lists that would show it: a
 * Zapier whose list lags Connect UI's redirect.
 */
const LaggingLayer = (lag: number) => {
  const lagging = Layer.effect(
    Connections.Connections,
    Effect.map(Connections.Connections, (inner) => {
      const sightings = new Map<string, number>()
      return Connections.Connections.of({
        ...inner,
        list: (who, app) =>
          Effect.map(inner.list(who, app), (listed) =>
            listed.filter((c) => {
              const seen = (sightings.get(c.id) ?? 0) + 1
              sightings.set(c.id, seen)
              return seen > lag
            })
          )
      })
    })
  )
  return EmbeddedActions.layer.pipe(
    Layer.provide(lagging),
    Layer.provideMerge(Layer.merge(FakeZapier.layer(FakeZapier.sampleSeed), ConnectionStore.layerMemory))
  )
}

const listsOf = (ledger: FakeZapier.Ledger) =>
  ledger.requests.filter((r) => r.endpoint === "GET /v2/authentications").length

/** The Connect link of a user without a connection, minted with a redirect URI. */
const redirectLink = (who: Domain.EndUser) =>
  Effect.gen(function* () {
    const { actions } = yield* services
    const required = yield* Effect.flip(
      actions.ensureConnection(who, sample.slack, { redirectUri: "https://partner.example/zapier/callback?app=slack" })
    )
    if (required._tag !== "ConnectionRequired") return assert.fail(`expected ConnectionRequired, got ${required._tag}`)
    const link = required.link!
    const redirect = new URL(new URL(link.url).searchParams.get("redirect_uri")!)
    return { link, state: link.state!, nonce: redirect.searchParams.get(Domain.attemptParameter)! }
  })

const reasonOf = (error: { readonly _tag: string }) =>
  error instanceof Errors.ConnectFailed ? error.reason : error._tag

describe("EmbeddedActions.completeConnection against forged and early callbacks", () => {
  it.effect("a forged error link (no state, no attempt parameter) is refused as unbound; the attempt stays open", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const { link, state } = yield* redirectLink(user)
      const forged = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          error: "access_denied",
          error_description: "Your account is locked: call +1 555 0100"
        })
      )
      assert.strictEqual(reasonOf(forged), "unbound")
      assert.notInclude(forged.message, "555")
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(state)).closed)
      // the user's real callback still completes the attempt
      const real = yield* zapier.approveConnect(link)
      const connection = yield* actions.completeConnection(user, sample.slack, real)
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, connection.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a forged success redirect without proof is refused as unbound before anything is listed", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const theirs = yield* zapier.addConnection(other, sample.slack)
      const { state } = yield* redirectLink(user)
      yield* zapier.resetLedger
      const forged = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, { authentication_id: theirs.id, service: "SlackAPI" })
      )
      assert.strictEqual(reasonOf(forged), "unbound")
      assert.strictEqual(listsOf(yield* zapier.ledger), 0)
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(state)).closed)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a redirect bound only by the attempt parameter completes (Zapier need not echo state)", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const { link, state, nonce } = yield* redirectLink(user)
      assert.strictEqual(nonce, state)
      const approved = yield* zapier.approveConnect(link)
      if (!("authentication_id" in approved)) return assert.fail("expected the redirect form")
      const connection = yield* actions.completeConnection(user, sample.slack, {
        authentication_id: approved.authentication_id,
        service: "SlackAPI",
        [Domain.attemptParameter]: nonce
      })
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, connection.id)
      assert.isTrue(Option.getOrThrow(yield* store.findAttempt(state)).closed)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("state and attempt parameter that disagree are refused, and so is another user's attempt parameter", () =>
    Effect.gen(function* () {
      const { actions, store } = yield* services
      const mine = yield* redirectLink(user)
      const theirs = yield* redirectLink(other)
      const mixed = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          error: "access_denied",
          state: mine.state,
          [Domain.attemptParameter]: theirs.nonce
        })
      )
      assert.strictEqual(reasonOf(mixed), "state_mismatch")
      const stolen = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          error: "access_denied",
          [Domain.attemptParameter]: theirs.nonce
        })
      )
      assert.strictEqual(reasonOf(stolen), "other_user")
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(mine.state)).closed)
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(theirs.state)).closed)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a proven error closes the attempt; Zapier's error_description is kept as data, never in the message", () =>
    Effect.gen(function* () {
      const { actions, store } = yield* services
      const { state, nonce } = yield* redirectLink(user)
      const denied = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          error: "access_denied",
          error_description: "<b>Call +1 555 0100</b>",
          [Domain.attemptParameter]: nonce
        })
      )
      if (!(denied instanceof Errors.ConnectFailed)) return assert.fail(denied._tag)
      assert.strictEqual(denied.reason, "denied")
      assert.strictEqual(denied.description, "<b>Call +1 555 0100</b>")
      assert.notInclude(denied.message, "555")
      assert.include(denied.message, "access_denied")
      assert.isTrue(Option.getOrThrow(yield* store.findAttempt(state)).closed)
      const odd = new Errors.ConnectFailed({ app: sample.slack, reason: "denied", error: "Visit evil.example" })
      assert.notInclude(odd.message, "evil")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a connection Zapier lists a moment after the redirect is re-checked and completed", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const { link, state } = yield* redirectLink(user)
      const approved = yield* zapier.approveConnect(link)
      yield* zapier.resetLedger
      const fiber = yield* Effect.fork(actions.completeConnection(user, sample.slack, approved))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "still waiting for Zapier to list it")
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(state)).closed, "not closed before it is verified")
      yield* TestClock.adjust("2 seconds")
      const connection = yield* Fiber.join(fiber)
      assert.strictEqual(listsOf(yield* zapier.ledger), 3)
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, connection.id)
      assert.isTrue(Option.getOrThrow(yield* store.findAttempt(state)).closed)
    }).pipe(Effect.provide(LaggingLayer(2)))
  )

  it.effect("an id that never shows up fails after a bounded number of lists, and the attempt stays open", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const { link, state, nonce } = yield* redirectLink(user)
      yield* zapier.resetLedger
      const error = yield* settle(
        Effect.flip(
          actions.completeConnection(user, sample.slack, {
            authentication_id: "999999",
            [Domain.attemptParameter]: nonce
          })
        ),
        "1 minute"
      )
      assert.strictEqual(reasonOf(error), "connection_not_found")
      const lists = listsOf(yield* zapier.ledger)
      assert.isAtLeast(lists, 3)
      assert.isAtMost(lists, 6, "a few re-checks within the grace, not a poll")
      assert.isFalse(Option.getOrThrow(yield* store.findAttempt(state)).closed)
      const real = yield* zapier.approveConnect(link)
      yield* actions.completeConnection(user, sample.slack, real)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("with connectionGrace 0 the id is checked once", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const { nonce } = yield* redirectLink(user)
      yield* zapier.resetLedger
      const error = yield* Effect.flip(
        actions.completeConnection(user, sample.slack, {
          authentication_id: "999999",
          [Domain.attemptParameter]: nonce
        })
      ).pipe(Effect.provideService(Polling.Policy, { ...Polling.defaults, connectionGrace: Duration.zero }))
      assert.strictEqual(reasonOf(error), "connection_not_found")
      assert.strictEqual(listsOf(yield* zapier.ledger), 1)
    }).pipe(Effect.provide(TestLayer()))
  )
})

describe("EmbeddedActions.awaitConnection", () => {
  it.effect("returns the connection that appears after the call, and stores it", () =>
    Effect.gen(function* () {
      const { actions, store, zapier } = yield* services
      const old = yield* zapier.addConnection(user, sample.slack)
      const fiber = yield* Effect.fork(actions.awaitConnection(user, sample.slack, { timeout: "5 minutes" }))
      yield* TestClock.adjust("20 seconds")
      const fresh = yield* zapier.addConnection(user, sample.slack)
      yield* TestClock.adjust("20 seconds")
      const found = yield* Fiber.join(fiber)
      assert.strictEqual(found.id, fresh.id)
      assert.notStrictEqual(found.id, old.id)
      assert.strictEqual(Option.getOrThrow(yield* store.get(user, sample.slack)).connectionId, fresh.id)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("fails ConnectFailed(timeout) when nothing appears in time", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const fiber = yield* Effect.fork(
        Effect.flip(actions.awaitConnection(user, sample.slack, { timeout: "1 minute" }))
      )
      yield* TestClock.adjust("2 minutes")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag === "ConnectFailed" ? error.reason : error._tag, "timeout")
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("follows Polling.Policy: its delays between list requests, its deadline by default", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      const fiber = yield* Effect.fork(Effect.flip(actions.awaitConnection(user, sample.slack)))
      // One list before the wait, then one every 3 s: at 3, 6 and 9 s; the 10 s deadline ends it.
      yield* TestClock.adjust("9500 millis")
      assert.strictEqual(FakeZapier.requestsByEndpoint(yield* zapier.ledger)[FakeZapier.Endpoint.authentications], 4)
      assert.isNull(yield* Fiber.poll(fiber).pipe(Effect.map(Option.getOrNull)))
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag === "ConnectFailed" ? error.reason : error._tag, "timeout")
    }).pipe(
      Effect.provide(TestLayer()),
      Effect.provideService(Polling.Policy, {
        ...Polling.defaults,
        initialDelay: Duration.seconds(3),
        factor: 1,
        maxDelay: Duration.seconds(3),
        jitter: 0,
        deadline: Duration.seconds(10)
      })
    )
  )
})

describe("polling", () => {
  // The default policy: first poll after 500 ms, ×1.5, 5 s cap, ±20 % jitter. Without jitter the poll times are
  // 0.5, 1.25, 2.375, 4.06, 6.59, 10.39, 15.39, then every 5 s. Target G8 (docs/targets.md) allows 1.25× these counts and a
  // detection lag ≤ 1.2·min(5 s, 0.5 s + 0.5·T).
  const cases = [
    { seconds: 0.5, maxGets: 2 },
    { seconds: 2, maxGets: 4 },
    { seconds: 10, maxGets: 8 },
    { seconds: 60, maxGets: 20 }
  ]
  for (const { maxGets, seconds } of cases) {
    it.effect(`finds a ${seconds} s run within ${maxGets} GETs and the lag bound`, () =>
      Effect.gen(function* () {
        const { actions, zapier } = yield* services
        yield* zapier.addConnection(user, sample.slack)
        yield* zapier.scriptRuns(
          sample.slack,
          sample.sendChannelMessage,
          FakeZapier.RunScript.succeed(Duration.seconds(seconds), ["ok"])
        )
        const fiber = yield* Effect.fork(actions.run(request()))
        // The TestClock wakes each poll at its own instant (the ledger's times are exact, jitter's fractions
        // included), so the step only sets how far past the run's end the clock may go: 1 s steps measure the same
        // lag as 50 ms steps did, in 60 adjustments instead of 1,200 for the 60 s run. Each adjustment yields to
        // the real event loop, so the 1,200 took 5-9 s alone and over 30 s on a loaded machine.
        let now = 0
        while (fiber.unsafePoll() === null && now < 400_000) {
          yield* TestClock.adjust("1 second")
          now += 1000
        }
        yield* Fiber.join(fiber)
        const ledger = yield* zapier.ledger
        const run = ledger.runs[0]!
        const polls = FakeZapier.pollsOf(ledger, run.runId)
        const lag = polls[polls.length - 1]!.at - (run.at + seconds * 1000)
        assert.isAtMost(polls.length, maxGets)
        assert.isAtLeast(lag, 0)
        assert.isAtMost(lag, 1.2 * Math.min(5000, 500 + 500 * seconds) + 50)
      }).pipe(Effect.provide(TestLayer()))
    )
  }

  it.effect("interrupting await stops polling", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const fiber = yield* Effect.fork(actions.run(request({ action: sample.exportChannelHistory })))
      yield* TestClock.adjust("30 seconds")
      const before = (yield* zapier.ledger).polls.length
      assert.isAtLeast(before, 5)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual((yield* zapier.ledger).polls.length, before)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("a custom policy is honoured", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const fixed: Polling.PolicyShape = {
        ...Polling.defaults,
        initialDelay: Duration.seconds(1),
        factor: 1,
        jitter: 0
      }
      yield* settle(actions.run(request()).pipe(Effect.provideService(Polling.Policy, fixed)))
      const ledger = yield* zapier.ledger
      assert.deepStrictEqual(
        FakeZapier.pollsOf(ledger, ledger.runs[0]!.runId).map((p) => p.at - ledger.runs[0]!.at),
        [1000, 2000]
      )
    }).pipe(Effect.provide(TestLayer()))
  )
})

describe("isolation", () => {
  it.effect("one user never sees another's connections or runs", () =>
    Effect.gen(function* () {
      const { actions, zapier } = yield* services
      yield* zapier.addConnection(user, sample.slack)
      const handle = yield* actions.start(request())
      const theirs = yield* Effect.flip(actions.ensureConnection(other, sample.slack))
      assert.strictEqual(theirs._tag, "ConnectionRequired", "the other user must connect on their own")
      const peek = yield* settle(Effect.either(actions.await(other, handle.runId)))
      assert.isTrue(Either.isLeft(peek))
      if (Either.isLeft(peek)) assert.strictEqual(peek.left._tag, "NotFound")
      const mine = yield* settle(actions.await(user, handle.runId))
      assert.strictEqual(mine.runId, handle.runId)
    }).pipe(Effect.provide(TestLayer()))
  )

  it.effect("errors never carry tokens", () =>
    Effect.gen(function* () {
      const { actions } = yield* services
      const error = yield* Effect.flip(actions.ensureConnection(user, sample.slack))
      if (error._tag !== "ConnectionRequired") return assert.fail(error._tag)
      const token = new URL(error.link!.url).searchParams.get("token")!
      assert.notInclude(JSON.stringify(error), token)
      assert.notInclude(error.message, token)
      assert.isTrue(Errors.isZapierError(error))
    }).pipe(Effect.provide(TestLayer()))
  )
})
