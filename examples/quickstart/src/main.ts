/**
 * `pnpm demo` — the quickstart.
 *
 * With no `ZAPIER_*` variables it starts a fake Zapier (FakeZapierServer) on 127.0.0.1, generates a partner ES256
 * key, and walks the five steps over real HTTP, following the Connect link as a browser would. With
 * `ZAPIER_CLIENT_ID` (and the other `ZAPIER_*` variables of `ZapierHttp.layerFromEnv`) set, it runs against Zapier
 * and prints the Connect link for a person to open, waiting with `awaitConnection`.
 *
 * Arguments: --app <id> --action <key> [--type WRITE] [--inputs '{"k":"v"}'] [--user u-42] [--tenant acme]
 *            [--redirect-uri https://partner.example/zapier/callback]
 *
 * Embedded triggers: --trigger <key> [--inputs '{"channel":"#general"}'] [--events 5] [--inbox-key <key>] walks the
 * Trigger Inbox flow instead (ensure the inbox, wait for active, events arrive, handled, acked).
 */
import { parseArgs } from "node:util"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { ConnectionStore, Domain, EmbeddedActions, type Errors, TriggerInbox } from "@effect-zapier/core"
import { ZapierHttp } from "@effect-zapier/http"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import { Cause, Console, Duration, Effect, Exit, Layer, Schema } from "effect"
import { ConnectStep, handOver, logPolls, maskToken, program } from "./Quickstart.js"
import { triggerProgram } from "./Trigger.js"

const { sample } = FakeZapier

/** The command line, decoded with Schema: a wrong argument is a clear message, not a crash. */
const Args = Schema.Struct({
  app: Domain.AppId,
  action: Domain.ActionKey,
  type: Domain.ActionType,
  inputs: Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  user: Domain.NonEmptyTrimmed,
  tenant: Domain.NonEmptyTrimmed,
  "redirect-uri": Schema.String,
  trigger: Schema.optional(Domain.ActionKey),
  events: Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)),
  "inbox-key": Domain.InboxKey
})

const readArgs = Effect.try({
  try: () =>
    parseArgs({
      args: process.argv.slice(2).filter((a) => a !== "--"),
      options: {
        app: { type: "string", default: sample.slack },
        action: { type: "string", default: sample.sendChannelMessage },
        type: { type: "string", default: "WRITE" },
        inputs: { type: "string" },
        user: { type: "string", default: sample.user.userId },
        tenant: { type: "string", default: sample.user.tenantId },
        "redirect-uri": { type: "string", default: "https://partner.example/zapier/callback" },
        trigger: { type: "string" },
        events: { type: "string", default: "5" },
        "inbox-key": { type: "string", default: "quickstart-demo" }
      },
      strict: true
    }).values,
  catch: (e) => `bad arguments: ${e instanceof Error ? e.message : String(e)}`
}).pipe(
  Effect.map((raw) => ({
    ...raw,
    inputs:
      raw.inputs ??
      JSON.stringify(
        raw.trigger !== undefined ? { channel: "#general" } : { channel: "#general", text: "Hello from effect-zapier" }
      )
  })),
  Effect.flatMap((raw) =>
    Schema.decodeUnknown(Args)(raw).pipe(
      Effect.mapError((e) => `bad arguments (--inputs must be a JSON object; --type an action type):\n${e.message}`)
    )
  )
)

/** Against the fake: the end user's browser, played over HTTP — open the link, press Approve, read the redirect. */
const followLinkAsBrowser = Layer.effect(
  ConnectStep,
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const actions = yield* EmbeddedActions.EmbeddedActions
    return ConnectStep.of({
      connect: (user, link) =>
        Effect.gen(function* () {
          const opened = yield* client.get(link.url)
          const page = yield* opened.text
          const session = /name="session" value="([^"]+)"/.exec(page)?.[1]
          if (!session) {
            // Connect UI refused the link: with a redirect_uri it says why in the redirect's query, else on the page.
            const location = opened.headers.location
            const query = location !== undefined ? new URL(location).searchParams : undefined
            const reason =
              query !== undefined
                ? `${query.get("error") ?? "error"}: ${query.get("error_description") ?? "no description"}`
                : page
                    .replace(/<script[\s\S]*?<\/script>/g, "")
                    .replace(/<[^>]+>/g, " ")
                    .replace(/\s+/g, " ")
                    .trim()
            return yield* Effect.fail(
              `Connect UI refused the link (HTTP ${opened.status}): ${reason.slice(0, 200) || "no reason given"}`
            )
          }
          const form = HttpClientRequest.post(new URL(new URL(link.url).pathname, link.url).toString()).pipe(
            HttpClientRequest.bodyUrlParams({ session, decision: "approve" })
          )
          const answer = yield* client.execute(form)
          const location = answer.headers.location
          if (!location) return yield* Effect.fail(`Connect UI did not redirect (HTTP ${answer.status})`)
          const callback = Object.fromEntries(new URL(location).searchParams)
          yield* Console.log(
            `      the user approved in Connect UI (the demo followed the link as a browser would) → redirect ` +
              `?authentication_id=${callback.authentication_id}&service=${callback.service}`
          )
          return yield* actions.completeConnection(user, link.app, callback)
        })
    })
  })
)

/** Against Zapier: a person opens the link; we wait for the connection to appear. */
const askAPerson = Layer.effect(
  ConnectStep,
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    return ConnectStep.of({
      connect: (user, link) =>
        handOver(link.url).pipe(
          Effect.orDie,
          Effect.zipRight(actions.awaitConnection(user, link.app, { timeout: "6 minutes" }))
        )
    })
  })
)

const Program = <E, R>(
  Zapier: Layer.Layer<ZapierHttp.Services | ZapierHttp.TriggerServices, E, R | HttpClient.HttpClient>,
  live: boolean
) => {
  const Services = TriggerInbox.layer.pipe(Layer.provideMerge(logPolls.pipe(Layer.provideMerge(Zapier))))
  const Actions = EmbeddedActions.layer.pipe(
    Layer.provideMerge(Services),
    Layer.provideMerge(ConnectionStore.layerMemory)
  )
  return (live ? askAPerson : followLinkAsBrowser).pipe(
    Layer.provideMerge(Actions),
    Layer.provideMerge(NodeHttpClient.layerUndici)
  )
}

const fake = Effect.gen(function* () {
  const key = yield* PartnerKey.generate({ alg: "ES256" })
  const Server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
  const Zapier = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer(FakeZapierServer.clientOptions(server, key))
    )
  )
  return Program(Zapier, false).pipe(Layer.provideMerge(Server))
})

const main = Effect.gen(function* () {
  const args = yield* readArgs
  const live = process.env.ZAPIER_CLIENT_ID !== undefined && process.env.ZAPIER_CLIENT_ID !== ""
  const options = {
    user: Domain.EndUser.make({ userId: args.user, tenantId: args.tenant }),
    app: args.app,
    action: args.action,
    actionType: args.type,
    inputs: args.inputs,
    redirectUri: args["redirect-uri"]
  }
  const trigger = args.trigger
  const triggerOptions = (emit: Parameters<typeof triggerProgram>[0]["emit"]) =>
    trigger === undefined
      ? undefined
      : {
          user: options.user,
          app: options.app,
          trigger,
          inputs: options.inputs,
          inboxKey: args["inbox-key"],
          redirectUri: options.redirectUri,
          events: args.events,
          emit,
          timeout: emit === undefined ? Duration.minutes(10) : Duration.seconds(30)
        }
  if (live) {
    yield* Console.log("effect-zapier quickstart — against Zapier (ZAPIER_* variables set)")
    const walk = triggerOptions(undefined)
    const Live = Program(ZapierHttp.layerFromEnv, true)
    if (walk !== undefined) return yield* Effect.asVoid(triggerProgram(walk).pipe(Effect.provide(Live)))
    return yield* Effect.asVoid(program(options).pipe(Effect.provide(Live)))
  }
  const App = yield* fake
  return yield* Effect.gen(function* () {
    const server = yield* FakeZapierServer.FakeZapierServer
    const zapier = yield* FakeZapier.FakeZapier
    yield* Console.log(
      `effect-zapier quickstart — against the embedded fake Zapier at ${server.url} (set ZAPIER_* to use Zapier)`
    )
    const walk = triggerOptions((inbox, count) => zapier.emitTriggerEvents(inbox, count))
    if (walk !== undefined) yield* triggerProgram(walk)
    else {
      // The fake holds the run until the demo has read it once while pending, then lets it end as scripted, so the
      // demo shows a pending poll on any machine (a 2 s run could end before a busy machine's first read).
      yield* zapier.holdRuns(options.app, options.action).pipe(
        Effect.flatMap((gate) => Effect.fork(Effect.zipRight(gate.awaitRead, gate.release))),
        Effect.catchTag("NotFound", () => Effect.void) // an unknown app or action: the program says so, with the choices
      )
      yield* program(options)
    }
    const counts = FakeZapier.requestsByEndpoint(yield* zapier.ledger)
    yield* Console.log(
      `\nZapier requests per endpoint: ${Object.entries(counts)
        .map(([endpoint, n]) => `${endpoint} ×${n}`)
        .join(" · ")}`
    )
  }).pipe(Effect.provide(App))
})

const explain = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (typeof error === "string") return error
    const tagged = error as Errors.ZapierError
    if (tagged && typeof tagged === "object" && "_tag" in tagged) {
      const link = tagged._tag === "ConnectionRequired" && tagged.link ? `\n  ${maskToken(tagged.link.url)}` : ""
      return `${tagged._tag}: ${tagged.message}${link}`
    }
  }
  return Cause.pretty(cause)
}

NodeRuntime.runMain(
  main.pipe(
    Effect.exit,
    Effect.flatMap((exit) =>
      Exit.isSuccess(exit)
        ? Effect.void
        : Console.error(`\nThe quickstart failed — ${explain(exit.cause)}`).pipe(
            Effect.zipRight(Effect.sync(() => (process.exitCode = 1)))
          )
    )
  ),
  { disableErrorReporting: true }
)
