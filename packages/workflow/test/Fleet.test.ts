/**
 * Durable runs on real processes and real PostgreSQL: runner child processes (`DurableLayers.layerCluster`, the live
 * HTTP client) against one FakeZapierServer (loopback HTTP) in this process. The fake's ledger counts the creates;
 * every run's inputs carry its key (`text`), so creates are also counted per key (Zapier's create has no idempotency
 * key of its own on the wire).
 */
import * as Net from "node:net"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Domain } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import { Context, Duration, Effect, Layer, Redacted, Schedule, type Scope } from "effect"
import * as Harness from "./fleet/harness.js"
import type * as Protocol from "./fleet/protocol.js"
import * as Pg from "./support/Pg.js"

const { sample } = FakeZapier
const user = sample.user

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

interface Fleet {
  readonly zapier: FakeZapier.Control
  readonly config: (port: number, extra?: Partial<Protocol.RunnerConfig>) => Protocol.RunnerConfig
  readonly connection: Domain.Connection
  /** Rows of the runs table whose create answered (run id recorded). */
  readonly recorded: Effect.Effect<number>
}

/** A FakeZapierServer, a fresh database and the runners' config (runners are spawned by each test). */
const fleet: Effect.Effect<Fleet, never, Scope.Scope> = Effect.gen(function* () {
  const key = yield* PartnerKey.generate()
  const context = yield* Layer.build(
    FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
  ).pipe(Effect.orDie)
  const server = Context.get(context, FakeZapierServer.FakeZapierServer)
  const zapier = Context.get(context, FakeZapier.FakeZapier)
  const connection = yield* Effect.orDie(zapier.addConnection(user, sample.slack))
  const url = yield* Pg.freshDatabase
  const sql = Context.get(
    yield* Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })).pipe(Effect.orDie),
    SqlClient.SqlClient
  )
  return {
    zapier,
    connection,
    config: (port, extra) => ({
      pgUrl: url,
      port,
      apiUrl: server.apiUrl,
      tokenUrl: server.tokenUrl,
      connectUrl: server.connectUrl,
      privateKeyPem: Redacted.value(key.privateKeyPem),
      kid: key.kid,
      ...extra
    }),
    recorded: sql<{ n: string }>`SELECT count(*) AS n FROM fleet_runs WHERE run_id IS NOT NULL`.pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0)),
      Effect.catchAll(() => Effect.succeed(0))
    )
  }
})

const runRequest = (key: string, connection: Domain.Connection, action = sample.sendChannelMessage) => ({
  user: { userId: user.userId, tenantId: user.tenantId },
  app: sample.slack,
  action,
  inputs: { channel: "#ops", text: key },
  connection: connection.id,
  // the fields check is covered elsewhere; here each run costs Zapier a lookup, a create and its polls
  validateInputs: false
})

/** Polls `check` until it holds (count-based; a generous bound for a loaded CI machine). */
const until = (check: Effect.Effect<boolean>) =>
  Effect.repeat(check, { schedule: Schedule.spaced("200 millis"), until: (ok) => ok }).pipe(
    Effect.timeout("150 seconds"),
    Effect.orDie
  )

const creates = (zapier: FakeZapier.Control) => Effect.map(zapier.ledger, (ledger) => ledger.runs)

describe("durable runs on a fleet of processes (PostgreSQL)", () => {
  it.live.skipIf(Pg.skip)(
    "three runners, 50 runs, one runner SIGKILLed with runs in flight: all complete, exactly 50 creates",
    () =>
      Effect.gen(function* () {
        const { zapier, config, connection, recorded } = yield* fleet
        // 50 runs lasting 2 s to 20 s (in the order Zapier receives the creates)
        yield* Effect.orDie(
          zapier.scriptRuns(
            sample.slack,
            sample.sendChannelMessage,
            ...Array.from({ length: 50 }, (_, i) =>
              FakeZapier.RunScript.succeed(Duration.millis(2_000 + Math.round((i * 18_000) / 49)), (inputs) => [
                { ref: inputs.text }
              ])
            )
          )
        )
        const ports = yield* Effect.all([freePort, freePort, freePort])
        // the first runner creates the tables; the other two join it
        const first = yield* Harness.spawn("runner-0", config(ports[0]!))
        const others = yield* Effect.all(
          [Harness.spawn("runner-1", config(ports[1]!)), Harness.spawn("runner-2", config(ports[2]!))],
          { concurrency: 2 }
        )
        const runners = [first, ...others]
        yield* Effect.logInfo("fleet: runners up")

        const keys = Array.from({ length: 50 }, (_, i) => `fleet-${i}`)
        yield* Effect.forEach(
          keys,
          (key, i) =>
            runners[i % 3]!.ask({ op: "start", key, request: runRequest(key, connection) }).pipe(
              Effect.flatMap(Harness.value)
            ),
          { concurrency: "unbounded" }
        )
        // every create answered and recorded, so no create is in flight when the runner dies
        yield* until(Effect.map(recorded, (n) => n === 50))
        yield* Effect.logInfo("fleet: 50 creates recorded")

        // The victim is chosen from the live state: the runner now holding the most unfinished executions (runs it
        // polled and last saw pending), once one holds any (right after the creates, the first polls may not have
        // answered yet; the longest runs last 20 s).
        const owned = yield* Effect.gen(function* () {
          while (true) {
            const counts = yield* Effect.forEach(runners, (r) =>
              r.ask({ op: "stats" }).pipe(Effect.map((s) => s.pending?.length ?? 0))
            )
            if (Math.max(...counts) > 0) return counts
            yield* Effect.sleep("200 millis")
          }
        }).pipe(Effect.timeout("150 seconds"), Effect.orDie)
        const victim = owned.indexOf(Math.max(...owned))
        assert.isAbove(owned[victim]!, 0, "the runner killed owns runs in flight")
        yield* runners[victim]!.kill
        yield* runners[victim]!.exited
        const survivors = runners.filter((_, i) => i !== victim)
        yield* Effect.logInfo(`fleet: runner-${victim} killed owning ${owned[victim]} runs in flight`)

        const runIds = yield* Effect.forEach(
          keys,
          (key, i) => survivors[i % 2]!.ask({ op: "await", key }).pipe(Effect.flatMap(Harness.value)),
          { concurrency: "unbounded" }
        )
        const completed = runIds.length

        // each result is readable from every surviving process
        for (const survivor of survivors) {
          const statuses = yield* Effect.forEach(keys, (key) =>
            survivor.ask({ op: "result", key }).pipe(Effect.flatMap(Harness.value))
          )
          assert.deepStrictEqual(
            statuses,
            runIds.map((id) => `Succeeded:${id}`)
          )
        }

        const runs = yield* creates(zapier)
        const perKey = FakeZapier.createsPerKey(yield* zapier.ledger, (run) => String(run.inputs.text))
        console.log(`durable fleet: ${completed}/${keys.length} completed, ${runs.length} creates`)
        assert.strictEqual(completed, 50)
        assert.strictEqual(runs.length, 50)
        assert.deepStrictEqual([...perKey.keys()].sort(), [...keys].sort())
        assert.isTrue(
          [...perKey.values()].every((n) => n === 1),
          "one create per key"
        )

        // A run callback delivered to a replica that does not own the run completes it.
        yield* survivors[0]!.ask({
          op: "start",
          key: "callback-1",
          request: runRequest("callback-1", connection, sample.exportChannelHistory)
        })
        yield* Effect.logInfo("fleet: callback run started")
        yield* until(Effect.map(recorded, (n) => n === 51))
        yield* Effect.logInfo("fleet: callback run created")
        const runId = (yield* creates(zapier)).find((r) => r.inputs.text === "callback-1")!.runId
        const owners = yield* Effect.forEach(survivors, (r) =>
          Effect.map(r.ask({ op: "stats" }), (s) => s.created?.includes(runId) ?? false)
        )
        const elsewhere = survivors[owners.indexOf(false)]!
        const delivered = yield* elsewhere.ask({
          op: "complete",
          state: Domain.RunSucceeded.make({ runId, results: [{ via: "callback" }] })
        })
        assert.strictEqual(delivered.value, "true")
        yield* Effect.logInfo("fleet: callback delivered")
        const awaited = yield* survivors[0]!.ask({ op: "await", key: "callback-1" }).pipe(Effect.flatMap(Harness.value))
        assert.strictEqual(awaited, runId)
      }).pipe(Effect.scoped),
    300_000
  )

  it.live.skipIf(Pg.skip)(
    "a runner restarted mid-poll resumes its runs without a new create; the same key twice is one run",
    () =>
      Effect.gen(function* () {
        const { zapier, config, connection, recorded } = yield* fleet
        yield* Effect.orDie(
          zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("6 seconds", []))
        )
        const port = yield* freePort
        const before = yield* Harness.spawn("before", config(port))
        const keys = ["restart-0", "restart-1", "restart-2"]
        for (const key of keys) yield* before.ask({ op: "start", key, request: runRequest(key, connection) })
        const again = yield* before.ask({ op: "start", key: "restart-0", request: runRequest("restart-0", connection) })
        assert.isDefined(again.value, "the same key again is accepted (one run)")
        yield* until(Effect.map(recorded, (n) => n === 3))
        // mid-poll: every run created, and polled at least once while pending
        yield* until(
          before.ask({ op: "stats" }).pipe(
            Effect.map((s) => s.pending?.length === 3),
            Effect.orElseSucceed(() => false)
          )
        )
        yield* before.kill
        yield* before.exited
        const after = yield* Harness.spawn("after", config(port))
        const results = yield* Effect.forEach(keys, (key) =>
          after.ask({ op: "await", key }).pipe(Effect.flatMap(Harness.value))
        )
        const runs = yield* creates(zapier)
        assert.strictEqual(runs.length, 3, "no create after the restart")
        assert.deepStrictEqual([...results].sort(), runs.map((r) => r.runId).sort())
      }).pipe(Effect.scoped),
    120_000
  )

  it.live.skipIf(Pg.skip)(
    "a crash between the create's answer and its journal: RunOutcomeUnknown after restart, one create, no second POST",
    () =>
      Effect.gen(function* () {
        const { zapier, config, connection } = yield* fleet
        const port = yield* freePort
        const doomed = yield* Harness.spawn("doomed", config(port, { crashAfterCreate: true }))
        yield* doomed
          .ask({ op: "start", key: "window-1", request: runRequest("window-1", connection) })
          .pipe(Effect.ignore)
        yield* doomed.exited
        assert.strictEqual((yield* creates(zapier)).length, 1)
        const after = yield* Harness.spawn("after", config(port))
        const reply = yield* after.ask({ op: "await", key: "window-1" })
        assert.strictEqual(reply.error, "RunOutcomeUnknown")
        assert.strictEqual((yield* creates(zapier)).length, 1, "never a second POST")
      }).pipe(Effect.scoped),
    120_000
  )
})
