/**
 * `runReads: "long-poll"` over real loopback against FakeZapierServer: reads held until the run ends (few reads,
 * little lag), metered in their own bucket of the rate limiter, and the switch back to `/v2` reads when the
 * Actions API answers 404 for runs created on `/v2`.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RateLimiter, ZapierHttp } from "../src/index.js"

const { sample, Endpoint } = FakeZapier
const key = await Effect.runPromise(PartnerKey.generate({ alg: "ES256", kid: "long-poll-key" }))
const seed = PartnerKey.register(FakeZapier.sampleSeed, key)

/** A rate limiter that records the bucket of every slot taken. */
const recordingLimiter = (buckets: Array<string>) =>
  Layer.succeed(
    RateLimiter.RateLimiter,
    RateLimiter.RateLimiter.of({
      take: (bucket) => Effect.sync(() => void buckets.push(bucket ?? "default")),
      pause: () => Effect.void
    })
  )

const program = (server: FakeZapierServer.Service, buckets: Array<string>) =>
  EmbeddedActions.layer.pipe(
    Layer.provideMerge(
      ZapierHttp.layer({
        ...FakeZapierServer.clientOptions(server, key),
        runReads: "long-poll",
        longPollWait: "2 seconds"
      }).pipe(Layer.provide(recordingLimiter(buckets)), Layer.provide(NodeHttpClient.layerUndici))
    ),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )

/** Runs `sendChannelMessage` (2 s in the sample, here 3 s) twice for the sample user, connected first. */
const twoRuns = (options: FakeZapierServer.Options) =>
  Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const zapier = yield* FakeZapier.FakeZapier
    yield* zapier.scriptRuns(sample.slack, sample.sendChannelMessage, FakeZapier.RunScript.succeed("3 seconds", []))
    const buckets: Array<string> = []
    const results = yield* Effect.gen(function* () {
      const actions = yield* EmbeddedActions.EmbeddedActions
      const required = yield* Effect.flip(actions.ensureConnection(sample.user, sample.slack))
      if (required._tag !== "ConnectionRequired") return assert.fail(required._tag)
      yield* actions.completeConnection(sample.user, sample.slack, yield* zapier.approveConnect(required.link!))
      yield* zapier.resetLedger
      const run = () =>
        actions.run({
          user: sample.user,
          app: sample.slack,
          action: sample.sendChannelMessage,
          inputs: { channel: "#general", text: "Hello" },
          timeout: Duration.seconds(30)
        })
      return [yield* run(), yield* run()]
    }).pipe(Effect.provide(program(server, buckets)))
    const ledger = yield* zapier.ledger
    const lags: Array<number> = []
    for (const r of results) {
      const polls = FakeZapier.pollsOf(ledger, r.runId)
      const info = yield* zapier.run(r.runId)
      lags.push(polls[polls.length - 1]!.at - info.finishesAt!)
    }
    return { ledger, buckets, lags, byEndpoint: FakeZapier.requestsByEndpoint(ledger) }
  }).pipe(Effect.provide(FakeZapierServer.layer({ seed, ...options })))

describe("runReads: long-poll", () => {
  it.live(
    "a 3 s run is read with at most ⌈T/W⌉ + 1 held reads, answered as it ends, in its own bucket",
    () =>
      Effect.gen(function* () {
        // How late this process's event loop ran timers meanwhile (the fake's end-of-run timer among them).
        const loopDelay = monitorEventLoopDelay({ resolution: 10 })
        loopDelay.enable()
        const { byEndpoint, buckets, lags } = yield* twoRuns({}).pipe(
          Effect.ensuring(Effect.sync(() => loopDelay.disable()))
        )
        const lateMillis = loopDelay.max / 1e6
        const reads = byEndpoint[Endpoint.readRun] ?? 0
        assert.isAtLeast(reads, 2)
        assert.isAtMost(reads, 2 * (Math.ceil(3 / 2) + 1))
        assert.isUndefined(byEndpoint[Endpoint.getRun])
        // The held read is answered when the run ends (the fake's timer; a generous bound, plus the worst lateness
        // of the event loop meanwhile, which on a loaded machine is the machine's, not the client's).
        for (const lag of lags)
          assert.isAtMost(lag, 1_000 + lateMillis, `event loop up to ${lateMillis.toFixed(0)} ms late`)
        // Every long-poll read took a slot of its own bucket; the other API requests the default one.
        assert.strictEqual(buckets.filter((b) => b === "actions_api_results").length, reads)
        assert.isAbove(
          buckets.filter((b) => b === "default").length,
          0,
          "the create and the action lookups take the default bucket"
        )
      }),
    30_000
  )

  it.live(
    "a 404 on the long-poll read for a run /v2 knows switches the client to /v2 reads for good",
    () =>
      Effect.gen(function* () {
        const { byEndpoint, ledger } = yield* twoRuns({ longPollReads: "not-found" })
        // One long-poll read ever (the 404), then /v2 reads for both runs; both runs succeeded.
        assert.strictEqual(byEndpoint[Endpoint.readRun], 1)
        assert.isAtLeast(byEndpoint[Endpoint.getRun] ?? 0, 2)
        assert.strictEqual(ledger.runs.length, 2)
      }),
    30_000
  )
})
