/**
 * A fleet sharing one Redis rate budget, as a partner runs it: three real child processes (fixtures/fleetProcess.ts,
 * run with tsx), each with the live client over undici and `RateLimiterRedis.layer` configured with the server's
 * own figures (20 requests per 10 s, the default margin), against one FakeZapierServer enforcing exactly that limit
 * (a 429 costs a 10 s cooldown). Twelve workers per process list connections as fast as the budget allows, so the
 * budget is always in demand. After the second window one process is killed with SIGKILL while its queued waiters
 * hold reservations.
 *
 * Checked from the server's ledger: no 429 at all; before the kill, ≥ 90 % of what the server would have admitted
 * in that span is used (and the margin leaves ≥ 90 % of the server's rate in the long run); the dead process's reservations cost only the window after the kill (the next window is
 * full again), and at most one window's worth of slots. Counts only: the run takes about 35 s of real time, and
 * every wait has a generous outer timeout.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { FakeZapier, FakeZapierServer } from "@effect-zapier/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { RateLimiter } from "../src/index.js"
import { type Config, Report } from "./fixtures/fleetProtocol.js"
import { maxInAnyWindow, partnerKey, seed } from "./kit.js"
import { redisAvailability, redisUrl } from "./redis.js"

const { Endpoint, sample } = FakeZapier

const redis = await redisAvailability("the Redis fleet tests")

const childModule = fileURLToPath(new URL("./fixtures/fleetProcess.ts", import.meta.url))
/** The package's directory: `--import tsx` resolves from the child's working directory. */
const packageDir = fileURLToPath(new URL("..", import.meta.url))

const PROCESSES = 3
const WORKERS = 12
const LIMIT = 20
const WINDOW = Duration.seconds(10)
const windowMillis = Duration.toMillis(WINDOW)
/** The window the limiters count over: the server's, plus the default margin. */
const countedMillis = windowMillis + Duration.toMillis(RateLimiter.defaultMargin(WINDOW))

interface Child {
  readonly index: number
  readonly process: ChildProcess
  readonly reports: Queue.Queue<Report>
  readonly stderr: Array<string>
}

/** A child process of the fleet; SIGKILLed when the scope closes if it is still running. */
const spawn = (index: number) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const reports = yield* Queue.unbounded<Report>()
      const child = fork(childModule, [], {
        cwd: packageDir,
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "ignore", "pipe", "ipc"]
      })
      const stderr: Array<string> = []
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")))
      child.on("message", (message: unknown) => {
        if (Schema.is(Report)(message)) Queue.unsafeOffer(reports, message)
      })
      return { index, process: child, reports, stderr } satisfies Child
    }),
    (child) =>
      Effect.sync(() => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
      })
  )

/** The next report of `child`, or a failure that shows what the child wrote to stderr. */
const nextReport = (child: Child, tag: Report["_tag"], within: Duration.DurationInput) =>
  Queue.take(child.reports).pipe(
    Effect.timeoutFail({
      duration: within,
      onTimeout: () => new Error(`fleet process ${child.index} sent no ${tag} (stderr: ${child.stderr.join("")})`)
    }),
    Effect.filterOrFail(
      (report) => report._tag === tag,
      (report) => new Error(`fleet process ${child.index}: expected ${tag}, got ${report._tag}`)
    )
  )

const send = (child: Child, message: Config | { readonly _tag: "go" | "stop" }) =>
  Effect.sync(() => child.process.send(message))

describe.skipIf(redis.skip)("a fleet sharing a Redis budget (3 real processes)", () => {
  it.live(
    "20 per 10 s enforced by the server: 0 × 429, ≥ 90 % of the budget used, a kill -9 costs at most one window",
    () =>
      Effect.gen(function* () {
        const server = yield* FakeZapierServer.FakeZapierServer
        const zapier = yield* FakeZapier.FakeZapier
        const prefix = `effect-zapier-test:fleet:${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}:`
        const children = yield* Effect.forEach(
          Array.from({ length: PROCESSES }, (_, i) => i),
          spawn
        )
        for (const child of children) {
          yield* send(child, {
            _tag: "config",
            index: child.index,
            workers: WORKERS,
            apiUrl: server.url,
            tokenUrl: `${server.url}/oauth/token`,
            clientId: sample.clientId,
            clientSecret: sample.clientSecret,
            signingKey: Redacted.value(partnerKey.privateKeyPem),
            keyId: partnerKey.kid,
            algorithm: partnerKey.alg,
            issuer: sample.issuer,
            app: sample.slack,
            redisUrl,
            prefix,
            limit: LIMIT,
            windowMillis
          })
        }
        // Start-up (tsx compiling the sources, tokens) is not part of the run.
        yield* Effect.forEach(children, (child) => nextReport(child, "ready", "90 seconds"), {
          concurrency: "unbounded"
        })
        yield* Effect.forEach(children, (child) => send(child, { _tag: "go" }))

        const accepted = Effect.map(zapier.ledger, (ledger) =>
          ledger.requests.filter((r) => r.endpoint === Endpoint.authentications && r.status === 200)
        )
        const poll = Effect.sleep("100 millis")
        // Two windows' worth served (the second window's slots are used, the third's reserved): kill one process.
        let served = yield* accepted
        while (served.length < 2 * LIMIT) {
          yield* poll
          served = yield* accepted
        }
        const t0 = Math.min(...served.map((r) => r.at))
        yield* Effect.sleep("300 millis")
        const victim = children[PROCESSES - 1]!
        victim.process.kill("SIGKILL")
        const killedAt = yield* Clock.currentTimeMillis
        const beforeKill = (yield* accepted).filter((r) => r.at <= killedAt)
        // Run on until the second window after the one the kill falls in has been served.
        while ((yield* Clock.currentTimeMillis) < t0 + 3 * countedMillis + 2_000) yield* poll
        const survivors = children.filter((child) => child !== victim)
        yield* Effect.forEach(survivors, (child) => send(child, { _tag: "stop" }))
        const done = yield* Effect.forEach(survivors, (child) => nextReport(child, "done", "30 seconds"), {
          concurrency: "unbounded"
        })

        const api = (yield* zapier.ledger).requests.filter((r) => r.endpoint === Endpoint.authentications)
        const ok = api.filter((r) => r.status === 200)
        const throttled = api.filter((r) => r.status === 429).length
        // The limiters grant a window's slots together, one counted window apart: window k is around t0 + k·W.
        const windowOf = (at: number) => Math.round((at - t0) / countedMillis)
        const perWindow = [0, 1, 2, 3].map((k) => ok.filter((r) => windowOf(r.at) === k).length)
        const lastBefore = Math.max(...beforeKill.map((r) => r.at))
        // The most a server counting LIMIT per sliding window admits from t0 to the last request before the kill
        // (its windows' bursts at t0, t0 + window, …), and what the fleet used of it.
        const admissibleBefore = LIMIT * (Math.floor((lastBefore - t0) / windowMillis) + 1)
        const budgetUse = beforeKill.length / admissibleBefore
        // In the long run the counted window (window + margin) caps the rate at window / (window + margin).
        const steadyCap = windowMillis / countedMillis
        const killWindow = windowOf(killedAt) + 1
        const lost = LIMIT - perWindow[killWindow]!
        const victimAfterKill = ok.filter(
          (r) => r.at > killedAt + 1_000 && r.user?.userId.startsWith(`fleet-${victim.index}-`) === true
        ).length
        console.info(
          `fleet: ${api.length} requests, ${throttled} × 429, per window ${perWindow.join("/")}, budget use before ` +
            `the kill ${(budgetUse * 100).toFixed(1)} % (steady-state cap ${(steadyCap * 100).toFixed(1)} %), ` +
            `slots lost after kill -9: ${lost} (window ${killWindow})`
        )

        assert.strictEqual(throttled, 0, "no request was refused by the server")
        assert.isAtMost(
          maxInAnyWindow(
            ok.map((r) => r.at),
            windowMillis
          ),
          LIMIT
        )
        for (const report of done) {
          if (report._tag !== "done") continue
          assert.strictEqual(report.rateLimited, 0, "no call waited longer than maxWait")
          assert.deepStrictEqual(report.failures, [])
        }
        // Before the kill: every window full, ≥ 90 % of what the server admits in that span.
        assert.strictEqual(perWindow[0], LIMIT)
        assert.strictEqual(perWindow[1], LIMIT)
        assert.isAtLeast(budgetUse, 0.9)
        assert.isAtLeast(steadyCap, 0.9)
        // The dead process sends nothing more; its reservations cost at most the window after the kill...
        assert.strictEqual(victimAfterKill, 0)
        assert.strictEqual(killWindow, 2)
        assert.isAtMost(lost, LIMIT)
        // ...and the next window is whole again.
        assert.strictEqual(perWindow[3], LIMIT)
      }).pipe(
        Effect.scoped,
        Effect.provide(FakeZapierServer.layer({ seed, rateLimitPerMinute: LIMIT, rateLimitWindow: WINDOW })),
        Effect.orDie
      ),
    180_000
  )
})
