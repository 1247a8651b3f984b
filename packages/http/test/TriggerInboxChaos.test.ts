/**
 * The Trigger Inbox consumer under a chaos plan over real loopback HTTP against FakeZapierServer (real clock):
 * 429s and 5xx on lease and ack, ack answers lost after the server committed them (a 500 and a dropped
 * connection), event streams dropped, a consumer process killed with SIGKILL mid-handler (a real child process:
 * nothing is released, its leases lapse), a consumer scope interrupted mid-handler (it releases what it holds),
 * and the process started again. Every message must end acked (or quarantined, and then reported), none lost;
 * the handler executions per message (counted from the processes' reports and the in-process handler) are
 * printed and bounded.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Domain, TriggerInbox } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ZapierHttp } from "../src/index.js"
import { ConsumerReport } from "./fixtures/inboxConsumerProtocol.js"

const { sample } = FakeZapier
const user = sample.user
const key = await Effect.runPromise(PartnerKey.generate({ alg: "ES256", kid: "chaos-key" }))
const seed = PartnerKey.register(FakeZapier.sampleSeed, key)

const childModule = fileURLToPath(new URL("./fixtures/inboxConsumer.ts", import.meta.url))
/** The package's directory: `--import tsx` resolves from the child's working directory. */
const packageDir = fileURLToPath(new URL("..", import.meta.url))

const plan = FakeZapier.inboxChaosPlan
const HANDLER_MILLIS = plan.handlerMillis
const LEASE_SECONDS = plan.consumer.leaseSeconds

/** Handler executions and completions per message id, from every process and scope. */
interface Tally {
  readonly started: Map<string, number>
  readonly done: Map<string, number>
}
const bump = (map: Map<string, number>, id: string) => map.set(id, (map.get(id) ?? 0) + 1)
const inFlight = (tally: Tally) => [...tally.started].some(([id, n]) => n > (tally.done.get(id) ?? 0))
const total = (map: Map<string, number>) => [...map.values()].reduce((a, b) => a + b, 0)

const stack = () => {
  const Server = FakeZapierServer.layer({ seed })
  const Client = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer({ ...FakeZapierServer.clientOptions(server, key), rateLimit: false })
    )
  )
  return TriggerInbox.layer.pipe(
    Layer.provideMerge(Client),
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provideMerge(Server),
    Layer.provide(Logger.remove(Logger.defaultLogger))
  )
}

/** Polls `done` (real time) until it holds; the bound only catches a hang on a loaded machine. */
const waitFor = (what: string, done: Effect.Effect<boolean>, timeout: Duration.DurationInput = "180 seconds") =>
  Effect.gen(function* () {
    while (!(yield* done)) yield* Effect.sleep("25 millis")
  }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out: ${what}`) }), Effect.orDie)

/** A consumer child process on the inbox; SIGKILLed when the scope closes if it still runs. */
const consumerProcess = (server: FakeZapierServer.Service, inbox: Domain.InboxId, tally: Tally) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const stderr: Array<string> = []
      let ready = false
      let ended: string | undefined
      const child: ChildProcess = fork(childModule, [], {
        cwd: packageDir,
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "ignore", "pipe", "ipc"]
      })
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")))
      child.on("message", (message: unknown) => {
        if (!Schema.is(ConsumerReport)(message)) return
        if (message._tag === "ready") ready = true
        else if (message._tag === "start") bump(tally.started, message.id)
        else if (message._tag === "done") bump(tally.done, message.id)
        else ended = message.reason
      })
      const options = FakeZapierServer.clientOptions(server, key)
      child.send({
        clientId: options.clientId,
        clientSecret: Redacted.value(options.clientSecret),
        signingKey: Redacted.value(options.signingKey),
        keyId: options.keyId,
        algorithm: options.algorithm,
        issuer: options.issuer,
        apiUrl: options.apiUrl,
        tokenUrl: options.tokenUrl,
        connectUrl: options.connectUrl,
        user: { userId: user.userId, tenantId: user.tenantId },
        inbox,
        handlerMillis: HANDLER_MILLIS,
        leaseSeconds: LEASE_SECONDS
      })
      yield* waitFor(
        "the consumer process to start",
        Effect.suspend(() =>
          ended !== undefined
            ? Effect.dieMessage(`the consumer process ended: ${ended}; ${stderr.join("")}`)
            : Effect.succeed(ready)
        )
      )
      return child
    }),
    (child) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

describe("Trigger Inbox chaos over loopback HTTP, with a consumer process killed and restarted", () => {
  it.live(
    "faults on lease, ack and the event stream, SIGKILL and interruption mid-handler, a restart: every message acked, executions bounded",
    () =>
      Effect.gen(function* () {
        const consumer = yield* TriggerInbox.TriggerInbox
        const zapier = yield* FakeZapier.FakeZapier
        const server = yield* FakeZapierServer.FakeZapierServer
        yield* zapier.setInboxSettings({ activation: "100 millis" })
        const connection = yield* zapier.addConnection(user, sample.slack)
        const inbox = yield* consumer.ensure(user, {
          key: Domain.InboxKey.make("chaos"),
          subscription: Domain.Subscription.make({
            app: sample.slack,
            action: sample.newChannelMessage,
            inputs: { channel: "#general" },
            connection: connection.id
          })
        })
        // The plan the bench's triggers.chaos figures come from too.
        for (const rule of plan.faults) yield* zapier.injectFault(rule)
        const tally: Tally = { started: new Map(), done: new Map() }

        // 1. A consumer process, killed with SIGKILL while handlers run (nothing released: the leases lapse).
        yield* zapier.emitTriggerEvents(inbox.id, 60)
        const first = yield* consumerProcess(server, inbox.id, tally)
        yield* waitFor(
          "handlers in flight in the first process",
          Effect.sync(() => total(tally.started) >= 8 && inFlight(tally))
        )
        first.kill("SIGKILL")
        yield* waitFor(
          "the first process to die",
          Effect.sync(() => first.signalCode !== null)
        )
        const killedMidHandler = [...tally.started].filter(([id, n]) => n > (tally.done.get(id) ?? 0)).length

        // 2. A consumer scope in this process, interrupted mid-handler (it releases what it holds).
        const mine: Tally = { started: new Map(), done: new Map() }
        const scope = yield* Effect.fork(
          consumer.consume(
            user,
            inbox.id,
            (_, message) =>
              Effect.gen(function* () {
                bump(tally.started, message.id)
                bump(mine.started, message.id)
                yield* Effect.sleep(HANDLER_MILLIS)
                bump(tally.done, message.id)
                bump(mine.done, message.id)
              }),
            plan.consumer
          )
        )
        yield* waitFor(
          "handlers in flight in the scope",
          Effect.sync(() => inFlight(mine))
        )
        yield* Fiber.interrupt(scope)
        const interruptedMidHandler = [...mine.started].filter(([id, n]) => n > (mine.done.get(id) ?? 0)).length

        // 3. The process started again; more events arrive meanwhile.
        yield* consumerProcess(server, inbox.id, tally)
        yield* zapier.emitTriggerEvents(inbox.id, 40)
        yield* waitFor(
          "every message acked or quarantined",
          Effect.map(zapier.inboxMessages, (all) =>
            all.every((m) => m.status === "acked" || m.status === "quarantined")
          )
        )
        const messages = yield* zapier.inboxMessages
        const executions = messages.map((m) => tally.started.get(m.id) ?? 0)
        const counts = {
          emitted: messages.length,
          acked: messages.filter((m) => m.status === "acked").length,
          quarantined: messages.filter((m) => m.status === "quarantined").length,
          lost: messages.filter((m) => m.status !== "acked" && m.status !== "quarantined").length,
          killedMidHandler,
          interruptedMidHandler,
          executions: total(tally.started),
          maxExecutionsPerMessage: Math.max(...executions),
          refusedAcks: (yield* zapier.inboxCounts).refusedAcks
        }
        console.log("trigger inbox chaos (loopback HTTP, SIGKILL + restart):", JSON.stringify(counts))
        assert.strictEqual(counts.emitted, 100)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.acked + counts.quarantined, 100)
        assert.strictEqual(counts.quarantined, 0, "no message was leased often enough to be quarantined")
        assert.isAtLeast(killedMidHandler, 1, "the first process was killed with handlers in flight")
        assert.isAtLeast(interruptedMidHandler, 1, "the scope was interrupted with handlers in flight")
        for (const m of messages) assert.isAtLeast(tally.started.get(m.id) ?? 0, 1, `message ${m.id} was handled`)
        assert.isAbove(counts.executions, 100, "the plan made some messages run again")
        // Killed mid-run, then interrupted mid-run, then run to its ack: at most three executions.
        assert.isAtMost(counts.maxExecutionsPerMessage, 3)
        const ledger = yield* zapier.ledger
        for (const endpoint of [FakeZapier.Endpoint.lease, FakeZapier.Endpoint.ack]) {
          const statuses = ledger.requests.filter((r) => r.endpoint === endpoint).map((r) => r.status)
          assert.include(statuses, 429, `${endpoint} answered 429`)
          assert.isTrue(
            statuses.some((s) => s >= 500),
            `${endpoint} answered 5xx`
          )
        }
        // The child processes end (their finalizers) before the server does, or it would wait on their streams.
      }).pipe(Effect.scoped, Effect.provide(stack())),
    Duration.toMillis(Duration.minutes(5))
  )
})
