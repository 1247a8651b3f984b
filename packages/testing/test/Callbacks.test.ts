/**
 * The fake's run callbacks, seen from a plain node:http listener on 127.0.0.1: the body Zapier documents, an RS256
 * signature that verifies against the fake's key set (and not after the body is changed, with bound claims),
 * retries on 5xx only, drops and duplicates as planned, loopback URLs refused unless the seed allows them, and
 * every attempt in the ledger. The TestClock is the model's clock; I/O is real.
 */
import * as Http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, type Domain } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as Jose from "jose"
import { FakeZapier } from "../src/index.js"

const { sample } = FakeZapier
const user = sample.user
const NOW = Date.parse("2026-03-01T12:00:00Z")

interface Received {
  readonly body: string
  readonly signature: string | undefined
}

/** A listener that records what it receives and answers with the next status of `answers` (then 200). */
const listener = (answers: Array<number>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly received: Array<Received> }>((resume) => {
      const received: Array<Received> = []
      const server = Http.createServer((req, res) => {
        let body = ""
        req.on("data", (chunk: Buffer) => {
          body += chunk.toString("utf8")
        })
        req.on("end", () => {
          const header = req.headers["zapier-callback-signature"]
          received.push({ body, signature: typeof header === "string" ? header : undefined })
          res.statusCode = answers.shift() ?? 200
          res.end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}/cb?zapier_run_token=t`, received, server }))
      })
    }),
    (l) => Effect.sync(() => (l as unknown as { server: Http.Server }).server.close())
  )

/** A millisecond of real time. */
const tick = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))

/** The fake's timeout of one callback POST (`callbacks.timeout`, default 5 s), a sleep on the TestClock. */
const CALLBACK_TIMEOUT = 5_000

/**
 * Moves the TestClock from wake-up to wake-up until the ledger has `n` callback entries, never while a delivery is
 * under way: a delivery signs its JWT and POSTs over real I/O, and records the clock's time when its answer is in,
 * so moving the clock meanwhile would change the time it records (or fire its timeout). So the clock jumps to the
 * next sleep (a run's end, a retry's delay) and then waits, in real time, for the ledger entry that wake-up brings;
 * the timeouts of POSTs (`at + 5 s`, `now + 5 s`) are never jumped to. The real-time guard only catches a hang.
 */
const until = (zapier: FakeZapier.Control, n: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 30_000
    const wait = Effect.suspend(() =>
      Date.now() < deadline ? tick : Effect.dieMessage(`fewer than ${n} callback entries after 30 s`)
    )
    for (;;) {
      const ledger = yield* zapier.ledger
      if (ledger.callbacks.length >= n) return
      const now = yield* TestClock.currentTimeMillis
      const timeouts = new Set([now, ...ledger.callbacks.map((c) => c.at)].map((at) => at + CALLBACK_TIMEOUT))
      const next = [...(yield* TestClock.sleeps())].filter((at) => at > now && !timeouts.has(at))
      if (next.length === 0) {
        // A delivery is under way (or its retry not yet scheduled): give it real time.
        yield* wait
        continue
      }
      const before = ledger.callbacks.length
      yield* TestClock.adjust(Math.min(...next) - now)
      // Every wake-up here starts a delivery (or records a dropped one): wait for its entry.
      while ((yield* zapier.ledger).callbacks.length === before) yield* wait
    }
  })

const createRun = (callbackUrl: string) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    yield* zapier.addConnection(user, sample.slack)
    const connection = (yield* zapier.connections(user))[0]!
    const catalog = yield* ActionCatalog.ActionCatalog
    const action = yield* catalog.resolve(user, sample.slack, sample.sendChannelMessage, "WRITE")
    const runs = yield* ActionRuns.ActionRuns
    return yield* runs.create(user, { action: action.id, connection: connection.id, inputs: {}, callbackUrl })
  })

const Seed = (callbacks: FakeZapier.CallbackSeed) => FakeZapier.layer({ ...FakeZapier.sampleSeed, callbacks })

describe("FakeZapier run callbacks", () => {
  it.scoped("posts the documented body with an RS256 signature that verifies against the key set", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const zapier = yield* FakeZapier.FakeZapier
      const target = yield* listener([])
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed("2 seconds", [{ ok: 1 }])
      )
      const runId = yield* createRun(target.url)
      yield* until(zapier, 1)
      assert.strictEqual(target.received.length, 1)
      const { body, signature } = target.received[0]!
      assert.deepStrictEqual(JSON.parse(body), {
        data: { type: "run", id: runId, status: "success", results: [{ ok: 1 }], errors: [] }
      })
      const jwks = Jose.createLocalJWKSet({ keys: [...(yield* zapier.callbackJwks).keys] })
      const verified = yield* Effect.promise(() =>
        Jose.jwtVerify(signature!, jwks, { algorithms: ["RS256"], currentDate: new Date(NOW + 2000) })
      )
      assert.strictEqual(verified.protectedHeader.kid, FakeZapier.callbackKeyId)
      assert.strictEqual((verified.payload.exp ?? 0) - (verified.payload.iat ?? 0), 300)
      assert.strictEqual(verified.payload.iat, Math.floor((NOW + 2000) / 1000), "signed when the run ended")
      assert.isUndefined(verified.payload.run_id, "minimal claims by default")
      const ledger = yield* zapier.ledger
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(ledger, runId).map((c) => [c.at - NOW, c.delivery, c.attempt, c.status]),
        [[2000, 1, 1, 200]]
      )
    }).pipe(Effect.provide(Seed({ allowLoopback: true })))
  )

  it.scoped("a run held by holdRuns posts its callback when released, not at its scripted end", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const zapier = yield* FakeZapier.FakeZapier
      const target = yield* listener([])
      const gate = yield* zapier.holdRuns(sample.slack, sample.sendChannelMessage) // scripted: 2 s
      const runId = yield* createRun(target.url)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* zapier.ledger).callbacks.length, 0, "nothing posted while held")
      yield* gate.release
      yield* until(zapier, 1)
      assert.strictEqual(JSON.parse(target.received[0]!.body).data.status, "success")
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(yield* zapier.ledger, runId).map((c) => [c.at - NOW, c.status]),
        [[10_000, 200]]
      )
    }).pipe(Effect.provide(Seed({ allowLoopback: true })))
  )

  it.scoped("bound claims: run_id and the body's SHA-256", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const zapier = yield* FakeZapier.FakeZapier
      const target = yield* listener([])
      const runId = yield* createRun(target.url)
      yield* until(zapier, 1)
      const { body, signature } = target.received[0]!
      const payload = Jose.decodeJwt(signature!)
      assert.strictEqual(payload.run_id, runId)
      const digest = Buffer.from(
        yield* Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)))
      ).toString("hex")
      assert.strictEqual(payload.body_sha256, digest)
    }).pipe(Effect.provide(Seed({ allowLoopback: true, claims: "bound" })))
  )

  it.scoped("retries 5xx answers up to 3 attempts in all, never a 4xx; drops and duplicates as planned", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const zapier = yield* FakeZapier.FakeZapier
      const target = yield* listener([503, 502, 500, 404])
      const first = yield* createRun(target.url)
      yield* until(zapier, 3)
      const second = yield* createRun(target.url)
      yield* until(zapier, 4)
      yield* zapier.planCallbacks("drop", "duplicate")
      const third = yield* createRun(target.url)
      const fourth = yield* createRun(target.url)
      yield* until(zapier, 7)
      const ledger = yield* zapier.ledger
      const statuses = (runId: Domain.ActionRunId) =>
        FakeZapier.callbacksOf(ledger, runId).map((c) => [c.delivery, c.attempt, c.status])
      assert.deepStrictEqual(statuses(first), [
        [1, 1, 503],
        [1, 2, 502],
        [1, 3, 500]
      ])
      assert.deepStrictEqual(statuses(second), [[1, 1, 404]], "a 4xx is not retried")
      assert.deepStrictEqual(statuses(third), [[1, 0, "dropped"]])
      assert.deepStrictEqual(statuses(fourth), [
        [1, 1, 200],
        [2, 1, 200]
      ])
      assert.strictEqual(target.received.length, 3 + 1 + 2)
    }).pipe(Effect.provide(Seed({ allowLoopback: true })))
  )

  it.scoped("a loopback or plain-http callback_url is refused with 400 unless the seed allows loopback", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const error = yield* Effect.flip(createRun("http://127.0.0.1:9/cb"))
      assert.strictEqual(error._tag, "BadRequest")
      const https = yield* Effect.flip(createRun("https://10.0.0.1/cb"))
      assert.strictEqual(https._tag, "BadRequest")
    }).pipe(Effect.provide(Seed({})))
  )
})
