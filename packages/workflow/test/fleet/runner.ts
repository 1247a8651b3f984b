/**
 * One runner of a test fleet, in a child process: `DurableLayers.layerCluster` on PostgreSQL over the live
 * `ZapierHttp` client pointed at the parent's FakeZapierServer. The parent drives it over IPC (see `protocol.ts`).
 * It counts the creates it sent and the runs it last saw pending (what it owns in flight).
 * With `crashAfterCreate` it kills itself with SIGKILL as soon as the create POST answers: the ambiguous window.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { ActionRuns, ConnectionStore, EmbeddedActions } from "@effect-zapier/core"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier } from "@effect-zapier/testing"
import { DurableRuns, RunWorkflow } from "@effect-zapier/workflow"
import * as DurablePg from "@effect-zapier/workflow/DurablePg"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Runtime, Schema } from "effect"
import * as Protocol from "./protocol.js"

const config = Schema.decodeUnknownSync(Schema.parseJson(Protocol.RunnerConfig))(process.env.DURABLE_RUNNER ?? "")

const created = new Set<string>()
const pending = new Set<string>()

const Base = ZapierHttp.layer({
  clientId: FakeZapier.sample.clientId,
  clientSecret: Redacted.make(FakeZapier.sample.clientSecret),
  signingKey: Redacted.make(config.privateKeyPem),
  keyId: config.kid,
  algorithm: "ES256",
  issuer: FakeZapier.sample.issuer,
  apiUrl: config.apiUrl,
  tokenUrl: config.tokenUrl,
  connectUrl: config.connectUrl,
  allowInsecureHttp: true,
  rateLimit: false
}).pipe(Layer.provide(NodeHttpClient.layerUndici))

const Tracked = Layer.effectContext(
  Effect.gen(function* () {
    const context = yield* Effect.context<ZapierHttp.Services>()
    const inner = Context.get(context, ActionRuns.ActionRuns)
    return Context.add(
      context,
      ActionRuns.ActionRuns,
      ActionRuns.ActionRuns.of({
        create: (user, run) =>
          inner.create(user, run).pipe(
            Effect.tap((runId) =>
              Effect.sync(() => {
                created.add(runId)
                if (config.crashAfterCreate) process.kill(process.pid, "SIGKILL")
              })
            )
          ),
        get: (user, runId) =>
          inner
            .get(user, runId)
            .pipe(
              Effect.tap((state) =>
                Effect.sync(() => (state._tag === "RunPending" ? pending.add(runId) : pending.delete(runId)))
              )
            )
      })
    )
  })
).pipe(Layer.provide(Base))

const Program = EmbeddedActions.layer.pipe(Layer.provideMerge(Layer.merge(Tracked, ConnectionStore.layerMemory)))

const Durable = DurablePg.layerCluster({
  pg: { url: Redacted.make(config.pgUrl), maxConnections: 8 },
  prefix: "fleet",
  runnerAddress: { host: "localhost", port: config.port },
  shardingConfig: {
    shardsPerGroup: 60,
    refreshAssignmentsInterval: "500 millis",
    runnerHealthCheckInterval: "1 second",
    entityMessagePollInterval: "500 millis",
    entityReplyPollInterval: "100 millis"
  }
}).pipe(Layer.provide(Program))

const decodeRequest = Schema.decodeUnknown(Protocol.Request)
const encodeRequest = Schema.decodeUnknown(RunWorkflow.DurableRequest)

const answer = (id: number, body: Omit<Protocol.Reply, "id">) => Effect.sync(() => process.send?.({ id, ...body }))

const handle = (runs: DurableRuns.Service, raw: unknown) =>
  Effect.gen(function* () {
    const message = yield* decodeRequest(raw)
    const reply = (
      value: Effect.Effect<Omit<Protocol.Reply, "id">, { readonly _tag: string; readonly message: string }>
    ) =>
      value.pipe(
        Effect.catchAll((e) => Effect.succeed({ error: e._tag, detail: e.message })),
        Effect.flatMap((body) => answer(message.id, body))
      )
    switch (message.op) {
      case "start":
        return yield* reply(
          Effect.flatMap(encodeRequest(message.request), (request) => runs.start(message.key, request)).pipe(
            Effect.map((executionId) => ({ value: executionId })),
            Effect.catchTag("ParseError", (e) => Effect.fail({ _tag: "ParseError", message: e.message }))
          )
        )
      case "await":
        return yield* reply(Effect.map(runs.await(message.key), (r) => ({ value: r.runId })))
      case "result":
        return yield* reply(
          Effect.map(runs.result(message.key), (status) => ({
            value:
              status._tag === "Succeeded"
                ? `Succeeded:${status.result.runId}`
                : status._tag === "Failed"
                  ? `Failed:${status.error._tag}`
                  : "Running"
          }))
        )
      case "complete":
        return yield* reply(Effect.map(runs.complete(message.state), (done) => ({ value: String(done) })))
      case "stats":
        return yield* answer(message.id, { created: [...created], pending: [...pending] })
    }
  }).pipe(Effect.catchAllCause((cause) => Effect.logError("runner: bad request", cause)))

const main = Effect.gen(function* () {
  const runs = yield* DurableRuns.DurableRuns
  const runtime = yield* Effect.runtime<never>()
  process.on("message", (raw) => Runtime.runFork(runtime)(handle(runs, raw)))
  // The parent going away stops this runner (gracefully: its shards are released).
  process.on("disconnect", () => process.kill(process.pid, "SIGTERM"))
  process.send?.({ ready: true })
  return yield* Effect.never
})

NodeRuntime.runMain(main.pipe(Effect.provide(Durable), Logger.withMinimumLogLevel(LogLevel.Warning)))
