/**
 * Two processes sharing a real Redis: this test process creates and awaits a run (the live client, the program,
 * `RunEventsRedis`), and a real child process (fixtures/callbackReplica.ts, run with tsx) is the replica at the
 * callback URL: it verifies the fake's signed callback against the fake's key set and publishes the run's end on
 * Redis. The await here completes from it, with no poll (the safety net's first poll is 15 s away). Counts, not
 * times: every wait has a generous outer timeout.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer } from "@effect-zapier/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { RunEventsRedis, ZapierHttp } from "../src/index.js"
import { partnerKey, seed } from "./kit.js"
import { redisAvailability, redisUrl } from "./redis.js"

const { sample } = FakeZapier
const user = sample.user
const redis = await redisAvailability("the run-callback fleet tests")

const childModule = fileURLToPath(new URL("./fixtures/callbackReplica.ts", import.meta.url))
const packageDir = fileURLToPath(new URL("..", import.meta.url))

/** The replica, SIGKILLed when the scope closes; resolves with its port once it serves. */
const replica = Effect.acquireRelease(
  Effect.sync(() => {
    const stderr: Array<string> = []
    const child: ChildProcess = fork(childModule, [], {
      cwd: packageDir,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    })
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")))
    return { child, stderr }
  }),
  ({ child }) =>
    Effect.sync(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    })
)

const ready = (child: ChildProcess, stderr: ReadonlyArray<string>) =>
  Effect.async<number>((resume) => {
    child.on("message", (message: unknown) => {
      if (typeof message === "object" && message !== null && "port" in message && typeof message.port === "number") {
        resume(Effect.succeed(message.port))
      }
    })
  }).pipe(
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error(`the replica did not start (stderr: ${stderr.join("")})`)
    })
  )

describe.skipIf(redis.skip)("run callbacks across two processes sharing Redis", () => {
  it.live("a callback received by the replica completes the await in this process, without a poll", () =>
    Effect.gen(function* () {
      const server = yield* FakeZapierServer.FakeZapierServer
      const zapier = yield* FakeZapier.FakeZapier
      const prefix = `effect-zapier-test:callbacks:${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}:`
      const { child, stderr } = yield* replica
      child.send({
        _tag: "config",
        clientId: sample.clientId,
        clientSecret: sample.clientSecret,
        signingKey: Redacted.value(partnerKey.privateKeyPem),
        keyId: partnerKey.kid,
        issuer: sample.issuer,
        apiUrl: server.url,
        jwksUrl: server.jwksUrl,
        redisUrl,
        prefix
      })
      const port = yield* ready(child, stderr)
      yield* zapier.addConnection(user, sample.slack)
      yield* zapier.scriptRuns(
        sample.slack,
        sample.sendChannelMessage,
        FakeZapier.RunScript.succeed("1 second", ["ok"])
      )

      const Program = EmbeddedActions.layer.pipe(
        Layer.provideMerge(
          ZapierHttp.layer({
            ...FakeZapierServer.clientOptions(server, partnerKey),
            ...FakeZapierServer.callbackOptions(server, `http://127.0.0.1:${port}/zapier/runs`)
          })
        ),
        Layer.provide(ConnectionStore.layerMemory),
        Layer.provide(RunEventsRedis.layer({ redis: { url: redisUrl }, prefix })),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const result = yield* Effect.gen(function* () {
        const actions = yield* EmbeddedActions.EmbeddedActions
        return yield* actions.run({
          user,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#general", text: "Hello" }
        })
      }).pipe(
        Effect.provide(Program),
        Effect.timeoutFail({
          duration: "60 seconds",
          onTimeout: () => new Error(`no callback reached this process (replica stderr: ${stderr.join("")})`)
        })
      )
      assert.deepStrictEqual(result.results, ["ok"])
      const ledger = yield* zapier.ledger
      const run = ledger.runs[0]!
      assert.strictEqual(FakeZapier.pollsOf(ledger, run.runId).length, 0, "ended by the callback, not by a poll")
      assert.strictEqual(FakeZapier.requestsByEndpoint(ledger)["GET /.well-known/jwks.json"], 1, "the replica's fetch")
      // The fake's ledger entry follows the replica's answer.
      // Waits for the entry itself; the timeout only ends a real hang.
      yield* Effect.gen(function* () {
        while ((yield* zapier.ledger).callbacks.length === 0) yield* Effect.sleep("10 millis")
      }).pipe(Effect.timeout("20 seconds"), Effect.ignore)
      assert.deepStrictEqual(
        FakeZapier.callbacksOf(yield* zapier.ledger, run.runId).map((c) => c.status),
        [200]
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(FakeZapierServer.layer({ seed: { ...seed, callbacks: { allowLoopback: true } } }))
    )
  )
})
