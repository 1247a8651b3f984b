/**
 * The spans of one run, exported through `@effect/opentelemetry` to an in-memory exporter: their names, the tree
 * they form, the attributes that help, and none of the secrets (access and connect tokens, the client secret, the
 * partner key, the session secret and cookie) nor the user's data (inputs, the connection's title).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EmbeddedActions, TokenExchange } from "@effect-zapier/core"
import * as SqliteStore from "@effect-zapier/sql/SqliteStore"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Fiber, Layer, Redacted } from "effect"
import * as Telemetry from "../src/Telemetry.js"
import * as Zapier from "../src/Zapier.js"
import { client, dataDir, options, partnerApp, SESSION_SECRET, settled } from "./fixtures.js"

const { sample } = FakeZapier
const INPUT_CANARY = "canary-input-text-5d1f0e"
const TITLE_CANARY = "canary-connection-title-81c2"

/** The fake Zapier with a partner key generated here, so the key's secret half is a known canary. */
const fakeWithKey = Effect.gen(function* () {
  const key = yield* PartnerKey.generate({ alg: "ES256" })
  const fake = yield* Layer.build(
    Zapier.layerForFake(key).pipe(
      Layer.provideMerge(FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  )
  return { key, fake }
})

/** Everything a span holds, as text: name, attributes, events (and theirs), status, links. */
const dump = (spans: ReadonlyArray<ReadableSpan>): string =>
  JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      status: s.status,
      links: s.links.map((l) => l.attributes)
    }))
  )

/** The secrets' distinctive parts: long enough not to match by chance, short enough to catch a truncated copy. */
const canariesOf = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  values.flatMap((v) => (v.length > 24 ? [v, v.slice(0, 24), v.slice(-24)] : [v]))

const parentOf = (spans: ReadonlyArray<ReadableSpan>, span: ReadableSpan) =>
  spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((s) => s.name === name)
const one = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = named(spans, name)
  assert.strictEqual(found.length, 1, `exactly one ${name} span (got ${found.length})`)
  return found[0]!
}

describe("the span tree of one run", () => {
  it.scopedLive(
    "EmbeddedActions.run → start (connection, action, create) and await (polls), attributes, no secrets",
    () => {
      const exporter = new InMemorySpanExporter()
      return Effect.gen(function* () {
        const { key, fake } = yield* fakeWithKey
        const control = Context.get(fake, FakeZapier.FakeZapier)
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "partner-app-trace-"))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        // The app's wiring of the library: EmbeddedActions over the Zapier services and the SQLite store.
        const context = yield* Layer.build(
          EmbeddedActions.layer.pipe(
            Layer.provide(SqliteStore.layer({ filename: Path.join(dir, "zapier.db") })),
            Layer.provideMerge(Layer.succeedContext(fake))
          )
        )
        const actions = Context.get(context, EmbeddedActions.EmbeddedActions)

        // Connect (its spans are checked for the connect token too).
        const required = yield* Effect.flip(actions.ensureConnection(sample.user, sample.slack))
        if (required._tag !== "ConnectionRequired")
          return assert.fail(`expected ConnectionRequired, got ${required._tag}`)
        const connectToken = new URL(required.link!.url).searchParams.get("token")!
        const callback = yield* control.approveConnect(required.link!, { mode: "popup", title: TITLE_CANARY })
        yield* actions.completeConnection(sample.user, sample.slack, callback)
        const connectSpans = [...exporter.getFinishedSpans()]
        exporter.reset()

        // The run is held pending until the client has read it so (its 2 s script alone could end before the first
        // read on a busy machine, and no poll would be "waiting"), then released.
        const gate = yield* control.holdRuns(sample.slack, sample.sendChannelMessage)
        const running = yield* Effect.fork(
          actions.run({
            user: sample.user,
            app: sample.slack,
            action: sample.sendChannelMessage,
            inputs: { channel: "#general", text: INPUT_CANARY }
          })
        )
        yield* gate.awaitRead
        yield* gate.release
        const result = yield* Fiber.join(running)
        const spans = [...exporter.getFinishedSpans()]
        const accessToken = Redacted.value(
          (yield* Context.get(fake, TokenExchange.TokenExchange).accessToken(sample.user)).value
        )

        // Names.
        const run = one(spans, "EmbeddedActions.run")
        const start = one(spans, "EmbeddedActions.start")
        const awaited = one(spans, "EmbeddedActions.await")
        const create = one(spans, "ActionRuns.create")
        const resolve = one(spans, "ActionCatalog.resolve")
        const ensure = one(spans, "EmbeddedActions.ensureConnection")
        const gets = named(spans, "ActionRuns.get")
        assert.isAtLeast(gets.length, 2)
        // The user's token was exchanged while connecting (a traced TokenExchange.accessToken); the run's requests
        // read it from the cache, which costs no span.
        assert.isAbove(named(connectSpans, "TokenExchange.accessToken").length, 0)
        assert.isAbove(named(spans, "Connections.list").length, 0)

        // The tree: run is the root of one trace; start and await under it; the steps under them.
        assert.isUndefined(run.parentSpanContext)
        const traceId = run.spanContext().traceId
        for (const span of spans) {
          if (span.name.startsWith("EmbeddedActions.") || span.name.startsWith("ActionRuns.")) {
            assert.strictEqual(span.spanContext().traceId, traceId, `${span.name} is in the run's trace`)
          }
        }
        assert.strictEqual(parentOf(spans, start), run)
        assert.strictEqual(parentOf(spans, awaited), run)
        assert.strictEqual(parentOf(spans, ensure), start)
        assert.strictEqual(parentOf(spans, resolve), start)
        assert.strictEqual(parentOf(spans, create), start)
        for (const get of gets) assert.strictEqual(parentOf(spans, get), awaited)
        assert.strictEqual(parentOf(spans, one(spans, "Connections.list"))?.name, "EmbeddedActions.ensureConnection")
        for (const token of named(spans, "TokenExchange.accessToken")) {
          assert.include(
            [
              "Connections.list",
              "ActionCatalog.resolve",
              "ActionCatalog.inputFields",
              "ActionRuns.create",
              "ActionRuns.get"
            ],
            parentOf(spans, token)?.name
          )
        }
        // The HTTP client's spans hang under the service method that sent them.
        const clientSpans = spans.filter((s) => s.name.startsWith("http.client"))
        assert.isAbove(clientSpans.length, gets.length)
        assert.isTrue(clientSpans.some((s) => parentOf(spans, s) === create))

        // Attributes that help.
        assert.deepInclude(run.attributes, {
          "zapier.app": "slack",
          "zapier.action": "send_channel_message",
          "zapier.action_type": "WRITE",
          "zapier.run_id": result.runId
        })
        assert.deepInclude(start.attributes, { "zapier.app": "slack", "zapier.run_id": result.runId })
        assert.deepInclude(create.attributes, { "zapier.run_id": result.runId })
        assert.deepInclude(awaited.attributes, { "zapier.run_id": result.runId, "zapier.polls": gets.length })
        assert.deepInclude(resolve.attributes, {
          "zapier.action_key": "send_channel_message",
          "zapier.action_type": "WRITE"
        })
        const statuses = gets.map((g) => g.attributes["zapier.run_status"])
        assert.strictEqual(statuses.at(-1), "RunSucceeded")
        assert.include(statuses, "waiting")

        // Nothing secret, nothing personal (in the connect flow's spans either).
        const text = dump([...connectSpans, ...spans])
        assert.include(text, result.runId) // the dump has the attributes
        assert.include(text, "has no connection to slack") // and the ConnectionRequired failure, recorded
        for (const canary of canariesOf([
          accessToken,
          connectToken,
          sample.clientSecret,
          Redacted.value(key.privateKeyPem).replace(/-----[A-Z ]+-----|\s/g, ""),
          String((JSON.parse(Redacted.value(key.privateJwk)) as { d: string }).d),
          INPUT_CANARY,
          TITLE_CANARY
        ])) {
          assert.notInclude(text, canary)
        }
      }).pipe(Effect.provide(Telemetry.layerExporter(exporter)))
    }
  )

  it.scopedLive("through the partner app: the request's span, the durable run's steps, and no session secrets", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function* () {
      const { key, fake } = yield* fakeWithKey
      const control = Context.get(fake, FakeZapier.FakeZapier)
      const app = yield* partnerApp(fake, options(yield* dataDir))
      const c = client(app.url)
      yield* c.login("u-42", "acme")
      const needed = yield* c.call("GET", "/api/apps/slack/connection")
      const connectUrl = String((needed.body as { connectUrl: string }).connectUrl)
      const payload = yield* control.approveConnect(connectUrl, { mode: "popup", title: TITLE_CANARY })
      yield* c.call("POST", "/api/apps/slack/connection", payload)
      const started = yield* c.call("POST", "/api/runs", {
        app: "slack",
        action: "send_channel_message",
        inputs: { channel: "#general", text: INPUT_CANARY }
      })
      assert.strictEqual(started.status, 202)
      const runId = String((started.body as { runId: string }).runId)
      yield* settled(c, runId)
      // The durable run's spans end right after its result is journaled: wait for the tree to be there (the run's
      // create and polls under their ended step spans), checking every 20 ms; the 20 s guard only catches a hang,
      // and the assertions below then say what is missing.
      const ancestorsIn = (all: ReadonlyArray<ReadableSpan>, span: ReadableSpan): Array<string> => {
        const parent = parentOf(all, span)
        return parent === undefined ? [] : [parent.name, ...ancestorsIn(all, parent)]
      }
      const complete = (all: ReadonlyArray<ReadableSpan>) => {
        const created = named(all, "ActionRuns.create").find((s) => s.attributes["zapier.run_id"] === runId)
        const gets = named(all, "ActionRuns.get").filter((g) => g.attributes["zapier.run_id"] === runId)
        return (
          named(all, "PartnerApp.startRun").length === 1 &&
          created !== undefined &&
          ancestorsIn(all, created).includes("create") &&
          gets.length > 0 &&
          gets.every((g) => ancestorsIn(all, g).some((name) => name.startsWith("poll/")))
        )
      }
      const deadline = performance.now() + 20_000
      while (!complete(exporter.getFinishedSpans()) && performance.now() < deadline) yield* Effect.sleep("20 millis")
      const spans = [...exporter.getFinishedSpans()]

      const startRun = one(spans, "PartnerApp.startRun")
      const server = parentOf(spans, startRun)
      assert.isDefined(server, "the handler's span has the HTTP server's span as parent")
      assert.match(server!.name, /^http\.server POST/)
      assert.strictEqual(parentOf(spans, one(spans, "DurableRuns.start"))?.name, "PartnerApp.startRun")
      assert.strictEqual(startRun.attributes["zapier.run_id"], runId)

      // The durable run's steps (the engine's own fibers): the create under its journaled step, the polls under theirs.
      const ancestors = (span: ReadableSpan): Array<string> => {
        const parent = parentOf(spans, span)
        return parent === undefined ? [] : [parent.name, ...ancestors(parent)]
      }
      const create = named(spans, "ActionRuns.create").find((s) => s.attributes["zapier.run_id"] === runId)!
      assert.isDefined(create, "the durable run created the run")
      assert.include(ancestors(create), "create")
      const polls = named(spans, "ActionRuns.get").filter((g) => g.attributes["zapier.run_id"] === runId)
      assert.isAbove(polls.length, 0)
      for (const get of polls) assert.isTrue(ancestors(get).some((name) => name.startsWith("poll/")))

      const text = dump(spans)
      assert.isTrue(
        spans.some((s) =>
          s.events.some(
            (e) =>
              e.name === "exception" && String(e.attributes?.["exception.message"]).includes("no connection to slack")
          )
        ),
        "the ConnectionRequired failure is recorded as an exception event"
      )
      const cookie = c.cookie!.slice("partner_session=".length)
      for (const canary of canariesOf([
        SESSION_SECRET,
        cookie,
        new URL(connectUrl).searchParams.get("token")!,
        sample.clientSecret,
        Redacted.value(key.privateKeyPem).replace(/-----[A-Z ]+-----|\s/g, ""),
        INPUT_CANARY,
        TITLE_CANARY
      ])) {
        assert.notInclude(text, canary)
      }
      // The cookie header was there, and recorded redacted.
      assert.isTrue(spans.some((s) => s.attributes["http.request.header.cookie"] === "<redacted>"))
    }).pipe(Effect.provide(Telemetry.layerExporter(exporter)))
  })
})
