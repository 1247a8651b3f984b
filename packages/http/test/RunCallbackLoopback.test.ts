/**
 * Run callbacks end to end over real loopback HTTP: the live client (ZapierHttp with runCallbackUrl) creates runs
 * on FakeZapierServer with `callback_url` = the partner's server, the fake POSTs signed callbacks to
 * RunCallback.handler mounted there, and `EmbeddedActions.run` completes from the bus. The TestClock is the clock
 * of the fake, the client and the receiver (I/O is real), so the safety net's schedule is exact.
 */
import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { RunCallback, ZapierHttp } from "../src/index.js"
import { captureSpans } from "./kit.js"

const { sample } = FakeZapier
const user = sample.user
const NOW = Date.parse("2026-03-01T12:00:00Z")

/** The partner's route answers 500 to the first `failures.left` callbacks (to see Zapier's retries). */
const failures = { left: 0 }
const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/zapier/runs", RunCallback.handler),
  HttpRouter.post(
    "/zapier/flaky-runs",
    Effect.suspend(() => {
      if (failures.left > 0) {
        failures.left--
        return Effect.succeed(HttpServerResponse.text("busy", { status: 500 }))
      }
      return RunCallback.handler
    })
  )
)

const lines: Array<string> = []
const Logs = Layer.merge(
  Logger.replace(
    Logger.defaultLogger,
    Logger.make((options) => {
      lines.push(Logger.logfmtLogger.log(options))
    })
  ),
  Logger.minimumLogLevel(LogLevel.All)
)

const spans = captureSpans()

const partnerUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}` : "http://invalid"
)

/** The whole stack for one test: the fake, the partner's server (handler), the live client, the program. */
const Stack = (path = "/zapier/runs", claims: "minimal" | "bound" = "minimal") =>
  Layer.unwrapEffect(
    Effect.map(PartnerKey.generate({ alg: "ES256" }), (key) => {
      // The fake's POST timeout and the client's attempt timeout run on the TestClock, which `drive` moves 100 ms
      // per 2 ms of real time whatever the sockets are doing: at their defaults (5 s, 30 s) a callback round trip
      // (signed, key set fetched, verified) of 100 ms of real time on a busy machine would time out. No test here
      // is about those timeouts, so they are an hour.
      const Fake = FakeZapierServer.layer({
        seed: {
          ...PartnerKey.register(FakeZapier.sampleSeed, key),
          callbacks: { allowLoopback: true, claims, timeout: "1 hour" }
        }
      })
      const Partner = NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
      const Client = Layer.unwrapEffect(
        Effect.gen(function* () {
          const server = yield* FakeZapierServer.FakeZapierServer
          const base = yield* partnerUrl
          return ZapierHttp.layer({
            ...FakeZapierServer.clientOptions(server, key),
            ...FakeZapierServer.callbackOptions(server, `${base}${path}`),
            requestTimeout: "1 hour"
          })
        })
      )
      return Layer.mergeAll(EmbeddedActions.layer, HttpServer.serve(routes)).pipe(
        Layer.provideMerge(Layer.merge(Client, ConnectionStore.layerMemory)),
        Layer.provideMerge(Fake),
        Layer.provideMerge(Partner),
        Layer.provideMerge(NodeHttpClient.layerUndici),
        Layer.provideMerge(Logs),
        Layer.provideMerge(spans.layer)
      )
    })
  )

/** Lets real I/O happen between TestClock steps. */
const io = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))

/** Runs `effect` while stepping the TestClock by `step` (letting I/O through) until it is done. */
const drive = <A, E, R>(effect: Effect.Effect<A, E, R>, step: Duration.DurationInput = "100 millis", max = 5000) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    for (let i = 0; i < max && fiber.unsafePoll() === null; i++) {
      yield* io
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.join(fiber)
  })

/**
 * Lets I/O through until the fake has recorded `n` callback attempts (its entry follows the partner's answer). The
 * wait is for the entry itself; the real-time deadline (the test clock is virtual here) only ends a real hang.
 */
const callbacksRecorded = (zapier: FakeZapier.Control, n: number) =>
  Effect.gen(function* () {
    const deadline = performance.now() + 20_000
    while ((yield* zapier.ledger).callbacks.length < n && performance.now() < deadline) yield* io
  })

const request = (overrides: Partial<EmbeddedActions.RunRequest> = {}): EmbeddedActions.RunRequest => ({
  user,
  app: sample.slack,
  action: sample.sendChannelMessage,
  inputs: { channel: "#general", text: "Hello" },
  ...overrides
})

const setup = Effect.gen(function* () {
  yield* TestClock.setTime(NOW)
  lines.length = 0
  spans.spans.length = 0
  failures.left = 0
  const zapier = yield* FakeZapier.FakeZapier
  yield* zapier.addConnection(user, sample.slack)
  return { zapier, actions: yield* EmbeddedActions.EmbeddedActions }
})

describe("run callbacks over loopback", () => {
  it.effect("a run completes from its signed callback: no poll, one delivery, the key set fetched once", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed("2 seconds", ["done"])
      )
      // Step the virtual clock until the run has ended at the fake (2 s after its create), then hold it still: from
      // there only the callback can end the await (the safety net's first poll is 15 s away). Stepping on while the
      // callback's real HTTP round trip runs would count a busy machine's slowness as detection lag.
      const fiber = yield* Effect.fork(actions.run(request()))
      let ended = false
      for (let i = 0; i < 5000 && !ended && fiber.unsafePoll() === null; i++) {
        yield* io
        yield* TestClock.adjust("100 millis")
        const runs = (yield* zapier.ledger).runs
        ended = runs.length > 0 && (yield* TestClock.currentTimeMillis) >= runs[0]!.at + 2000
      }
      const deadline = performance.now() + 20_000
      while (fiber.unsafePoll() === null && performance.now() < deadline) yield* io
      assert.isNotNull(fiber.unsafePoll(), "the callback ended the await with the clock held still")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result.results, ["done"])
      const now = yield* TestClock.currentTimeMillis
      yield* callbacksRecorded(zapier, 1)
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.strictEqual(FakeZapier.pollsOf(ledger, run.runId).length, 0, "no poll: the safety net's first is at 15 s")
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, run.runId).map((c) => [c.delivery, c.attempt, c.status]),
        [[1, 1, 200]]
      )
      // Detection lag on the virtual clock: the callback is posted at the end (2 s); the await ends within that step.
      assert.isAtMost(now - (run.at + 2000), 100)
      const counts = FakeZapier.requestsByEndpoint(ledger)
      assert.strictEqual(counts["GET /.well-known/jwks.json"], 1)
      assert.strictEqual(counts["GET /v2/action-runs/{id}/"], undefined)
      // A second run reuses the cached key set.
      yield* drive(actions.run(request()))
      assert.strictEqual(FakeZapier.requestsByEndpoint(yield* zapier.ledger)["GET /.well-known/jwks.json"], 1)
    }).pipe(Effect.provide(Stack()))
  )

  it.effect("a dropped callback: the safety net's poll at ~15 s ends the run; 0 runs lost", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      yield* zapier.planCallbacks("drop", "deliver")
      const result = yield* drive(actions.run(request()))
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.strictEqual(result.runId, run.runId)
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, run.runId).map((c) => c.status),
        ["dropped"]
      )
      const polls = FakeZapier.pollsOf(ledger, run.runId)
      assert.strictEqual(polls.length, 1)
      assert.isAtLeast(polls[0]!.at - run.at, 12_000)
      assert.isAtMost(polls[0]!.at - run.at, 18_100)
    }).pipe(Effect.provide(Stack()))
  )

  it.effect("a duplicate delivery is answered and ignored; a run that fails arrives as ActionRunFailed", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      yield* zapier.planCallbacks("duplicate")
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.fail("1 second", [{ code: "user", title: "Channel not found" }])
      )
      const failed = yield* drive(Effect.flip(actions.run(request())))
      assert.strictEqual(failed._tag, "ActionRunFailed")
      yield* callbacksRecorded(zapier, 2)
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, run.runId).map((c) => [c.delivery, c.status]),
        [
          [1, 200],
          [2, 200]
        ]
      )
      assert.strictEqual(FakeZapier.pollsOf(ledger, run.runId).length, 0)
    }).pipe(Effect.provide(Stack()))
  )

  it.effect("Zapier retries a 5xx answer (3 attempts in all), and the signature's bound claims are checked", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      failures.left = 2
      yield* drive(actions.run(request()))
      yield* callbacksRecorded(zapier, 3)
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, run.runId).map((c) => [c.attempt, c.status]),
        [
          [1, 500],
          [2, 500],
          [3, 200]
        ]
      )
      assert.strictEqual(FakeZapier.pollsOf(ledger, run.runId).length, 0)
    }).pipe(Effect.provide(Stack("/zapier/flaky-runs", "bound")))
  )

  it.effect("three 5xx answers: the callback is lost, the safety net still ends the run", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      failures.left = 3
      yield* drive(actions.run(request()))
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, run.runId).map((c) => c.status),
        [500, 500, 500]
      )
      assert.strictEqual(FakeZapier.pollsOf(ledger, run.runId).length, 1)
    }).pipe(Effect.provide(Stack("/zapier/flaky-runs")))
  )

  it.effect("the routing token and the signature never reach a log line", () =>
    Effect.gen(function* () {
      const { zapier, actions } = yield* setup
      const canary = "canary-routing-token-0123456789abcdefghijklmnop"
      yield* zapier.planCallbacks("duplicate")
      const handle = yield* actions.start(request({ callbackToken: Redacted.make(canary) }))
      yield* drive(actions.await(user, handle.runId, { callback: true }))
      // A forged callback for the same run (another key) is refused and logged.
      const forged = yield* partnerUrl
      yield* Effect.promise(() =>
        fetch(`${forged}/zapier/runs?zapier_run_token=${canary}`, {
          method: "POST",
          headers: { "zapier-callback-signature": "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ." },
          body: JSON.stringify({ data: { id: handle.runId, status: "success" } })
        }).then((r) => r.text())
      )
      assert.isAbove(lines.length, 0)
      for (const line of lines) {
        assert.notInclude(line, canary)
        assert.notInclude(line, "eyJ", "no JWT in a log line")
      }
      // The partner server's request spans (platform's tracing records the URL and the headers) are scrubbed.
      const server = spans.spans.filter((s) => s.attributes.get("url.path") === "/zapier/runs")
      assert.isAtLeast(server.length, 2)
      for (const span of server) {
        assert.include(String(span.attributes.get("url.query")), "zapier_run_token=<redacted>")
        assert.strictEqual(span.attributes.get("http.request.header.zapier-callback-signature"), "<redacted>")
      }
      for (const span of spans.spans) {
        for (const [key, value] of span.attributes) {
          assert.notInclude(String(value), canary, `${span.name} ${key}`)
          assert.notInclude(String(value), "eyJ", `${span.name} ${key}`)
        }
      }
      assert.notInclude(String(handle), canary)
      assert.notInclude(JSON.stringify(handle), canary)
    }).pipe(Effect.provide(Stack()))
  )
})
