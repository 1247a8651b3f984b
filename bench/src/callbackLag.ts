/**
 * 10. Callback lag, on the live clock over real loopback HTTP: how long after a run ends the awaiting fiber has it,
 * when the run's end arrives as a signed callback through `RunCallback.handler`.
 *
 * One process holds `FakeZapierServer` (live clock), the partner's server (`NodeHttpServer` with
 * `RunCallback.handler` mounted at `/zapier/runs`) and the library's live client (`ZapierHttp` with
 * `runCallbackUrl` pointing there, over undici). `runs` runs of `work` (scripted to take `runMillis`), one after
 * another, each `EmbeddedActions.run` with the callback expected: the create carries `callback_url`, and when the
 * run ends the fake signs the callback (RS256 with its own key) and POSTs it; the receiver verifies the signature
 * against the fake's key set (fetched once, then cached), decodes the body, puts the run on the memory bus, and the
 * await completes. Lag = the await's completion − the run's end (the fake signs and POSTs from that moment, so the
 * signing, the POST, the verification, the bus and the fiber's wake-up are all inside it). The safety net's first
 * poll is at 15 s, so a run ended by a poll would show as a lag of seconds; the ledger says how each run ended.
 */
import * as Http from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { RunCallback, ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Seed from "./seed.js"

export interface Options {
  readonly runs: number
  readonly runMillis: number
}

/** The `callbackLag` key of the results. */
export interface Result {
  /** Runs awaited. */
  readonly runs: number
  /** Runs whose end came from the callback (the rest: from a safety-net poll). */
  readonly viaCallback: number
  readonly lagP50Ms: number
  readonly lagP95Ms: number
  readonly lagMaxMs: number
  readonly lagMeanMs: number
  /** Callback POSTs the fake made (retries and duplicates included) and `GET /v2/action-runs/{id}/` polls. */
  readonly deliveries: number
  readonly polls: number
  /** Key set fetches by the receiver. */
  readonly jwksFetches: number
}

const path = "/zapier/runs"

const partnerUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? `http://127.0.0.1:${server.address.port}${path}` : "http://invalid"
)

/** The fake, the partner's receiver, the live client and `EmbeddedActions`, wired for callbacks over loopback. */
const stack = (key: PartnerKey.PartnerKey) => {
  const Fake = FakeZapierServer.layer({
    seed: {
      ...Seed.seed(1, [{ kid: key.kid, alg: key.alg, publicKeyPem: key.publicKeyPem }]),
      callbacks: { allowLoopback: true }
    }
  })
  const Partner = NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
  const Client = Layer.unwrapEffect(
    Effect.gen(function* () {
      const server = yield* FakeZapierServer.FakeZapierServer
      return ZapierHttp.layer({
        ...FakeZapierServer.clientOptions(server, key),
        ...FakeZapierServer.callbackOptions(server, yield* partnerUrl),
        rateLimit: false
      })
    })
  )
  return Layer.mergeAll(
    EmbeddedActions.layer,
    HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.post(path, RunCallback.handler)))
  ).pipe(
    Layer.provideMerge(Layer.merge(Client, ConnectionStore.layerMemory)),
    Layer.provideMerge(Fake),
    Layer.provideMerge(Partner),
    Layer.provideMerge(NodeHttpClient.layerUndici),
    Layer.provide(Logger.remove(Logger.defaultLogger))
  )
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

export const run = (options: Options) =>
  Effect.gen(function* () {
    const key = yield* PartnerKey.generate({ alg: "ES256", kid: "bench-callbacks" })
    return yield* Effect.gen(function* () {
      const zapier = yield* FakeZapier.FakeZapier
      const actions = yield* EmbeddedActions.EmbeddedActions
      yield* zapier.scriptRuns(
        Seed.app,
        Seed.action,
        FakeZapier.RunScript.succeed(Duration.millis(options.runMillis), [])
      )
      const one = Effect.gen(function* () {
        const result = yield* actions.run({
          user: Seed.user(0),
          app: Seed.app,
          action: Seed.action,
          inputs: {},
          timeout: Duration.minutes(1)
        })
        const done = yield* Clock.currentTimeMillis
        const info = yield* zapier.run(result.runId)
        return { runId: result.runId, lag: done - (info.finishesAt ?? Number.NaN) }
      })
      // One run first: the token, the connection check, the input fields and the key set are fetched then.
      yield* one
      yield* zapier.resetLedger
      const measured = yield* Effect.forEach(Array.from({ length: options.runs }), () => one)
      const ledger = yield* zapier.ledger
      const byEndpoint = FakeZapier.requestsByEndpoint(ledger)
      const viaCallback = measured.filter((m) => FakeZapier.pollsOf(ledger, m.runId).length === 0).length
      const lags = measured.map((m) => m.lag).sort((a, b) => a - b)
      return {
        runs: measured.length,
        viaCallback,
        lagP50Ms: quantile(lags, 0.5),
        lagP95Ms: quantile(lags, 0.95),
        lagMaxMs: lags[lags.length - 1] ?? Number.NaN,
        lagMeanMs: lags.reduce((a, b) => a + b, 0) / Math.max(1, lags.length),
        deliveries: ledger.callbacks.length,
        polls: byEndpoint[FakeZapier.Endpoint.getRun] ?? 0,
        jwksFetches: byEndpoint[FakeZapier.Endpoint.callbackJwks] ?? 0
      } satisfies Result
    }).pipe(Effect.provide(stack(key)))
  }).pipe(Effect.scoped)
