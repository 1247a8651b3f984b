import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { RateLimiter, ZapierHttp } from "../src/index.js"
import {
  bearerOf,
  captureLogs,
  captureSpans,
  driveClock,
  fakeZapier,
  generateKeys,
  json,
  options,
  type Recorded,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")

const run: ActionRuns.CreateRun = {
  action: Domain.ActionId.make("uag:send_message-1"),
  connection: Domain.ConnectionId.make("c1"),
  inputs: { channel: "#general", text: "hello", count: 2 }
}

const runId = Domain.ActionRunId.make("arun_abc123")
const created = () => json({ data: { type: "run", id: "arun_abc123" } })
const runs = (zapier: ReturnType<typeof fakeZapier>) =>
  ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))
const api = (zapier: ReturnType<typeof fakeZapier>): Array<Recorded> =>
  zapier.requests.filter((r) => r.path.startsWith("/v2/"))

describe("HttpActionRuns.create", () => {
  it.effect("POSTs the flat White Label body to /v2/action-runs/ by default", () => {
    const zapier = fakeZapier(() => created())
    return Effect.gen(function* () {
      const actionRuns = yield* ActionRuns.ActionRuns
      const id = yield* actionRuns.create(user, run)
      assert.strictEqual(id, runId)
      const request = api(zapier)[0]!
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.url.href, "https://api.zapier.com/v2/action-runs/")
      assert.strictEqual(request.headers["content-type"], "application/json")
      assert.strictEqual(bearerOf(request), "access-token-canary-1")
      assert.deepStrictEqual(request.json, {
        action: "uag:send_message-1",
        authentication: "c1",
        input: { channel: "#general", text: "hello", count: 2 }
      })
      yield* actionRuns.create(user, {
        ...run,
        connection: null,
        callbackUrl: "https://partner.example/zapier/runs"
      })
      assert.deepStrictEqual(api(zapier)[1]!.json, {
        action: "uag:send_message-1",
        authentication: null,
        input: { channel: "#general", text: "hello", count: 2 },
        callback_url: "https://partner.example/zapier/runs"
      })
    }).pipe(Effect.provide(runs(zapier)))
  })

  it.effect("runBodyShape: data sends the OpenAPI shape {data: {action, authentication, inputs}}", () => {
    const zapier = fakeZapier(() => json({ data: { type: "run", id: 42 } }))
    return Effect.gen(function* () {
      const id = yield* Effect.flatMap(ActionRuns.ActionRuns, (r) =>
        r.create(user, { ...run, callbackUrl: "https://partner.example/cb" })
      )
      assert.strictEqual(id, "42")
      assert.deepStrictEqual(api(zapier)[0]!.json, {
        data: {
          action: "uag:send_message-1",
          authentication: "c1",
          inputs: { channel: "#general", text: "hello", count: 2 },
          callback_url: "https://partner.example/cb"
        }
      })
    }).pipe(Effect.provide(ZapierHttp.layer(options(keys, { runBodyShape: "data" })).pipe(Layer.provide(zapier.layer))))
  })

  it.effect("a 400 parse_error is retried once in the other shape, which is then remembered", () => {
    const parseError = () =>
      json(
        {
          errors: [
            {
              status: 400,
              code: "parse_error",
              title: "ParseError",
              detail: "Malformed request.",
              source: null,
              meta: { source: "ZAPIER" }
            }
          ]
        },
        400
      )
    const zapier = fakeZapier((request) =>
      request.json !== null && typeof request.json === "object" && "data" in request.json ? created() : parseError()
    )
    const logs = captureLogs()
    return Effect.gen(function* () {
      const actionRuns = yield* ActionRuns.ActionRuns
      assert.strictEqual(yield* actionRuns.create(user, run), runId)
      assert.deepStrictEqual(
        api(zapier).map((r) => Object.keys(r.json as object)),
        [["action", "authentication", "input"], ["data"]]
      )
      // Remembered: the next run goes straight to the shape that worked.
      assert.strictEqual(yield* actionRuns.create(user, run), runId)
      assert.strictEqual(api(zapier).length, 3)
      assert.deepStrictEqual(Object.keys(api(zapier)[2]!.json as object), ["data"])
      assert.isTrue(logs.lines.some((l) => l.includes("other create-run body shape")))
    }).pipe(Effect.provide(runs(zapier)), Effect.provide(logs.layer))
  })

  it.effect("parse_error in both shapes is BadRequest and the shape is not switched", () => {
    const zapier = fakeZapier(() =>
      json({ errors: [{ status: 400, code: "parse_error", title: "ParseError", detail: "Malformed request." }] }, 400)
    )
    return Effect.gen(function* () {
      const actionRuns = yield* ActionRuns.ActionRuns
      const error = yield* Effect.flip(actionRuns.create(user, run))
      assert.strictEqual(error._tag, "BadRequest")
      assert.strictEqual(api(zapier).length, 2)
      yield* Effect.flip(actionRuns.create(user, run))
      assert.deepStrictEqual(Object.keys(api(zapier)[2]!.json as object), ["action", "authentication", "input"])
    }).pipe(Effect.provide(runs(zapier)))
  })

  it.effect("another 400 (bad inputs) is BadRequest without retry", () => {
    const zapier = fakeZapier(() =>
      json({ errors: [{ status: 400, code: "invalid_input", title: "Invalid", detail: "channel is required" }] }, 400)
    )
    return Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run)))
      assert.strictEqual(error._tag, "BadRequest")
      if (error._tag === "BadRequest") assert.strictEqual(error.errors[0]!.detail, "channel is required")
      assert.strictEqual(api(zapier).length, 1)
    }).pipe(Effect.provide(runs(zapier)))
  })

  it.effect("inputs that are not JSON are BadRequest and nothing is sent", () => {
    const zapier = fakeZapier(() => created())
    return Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, { ...run, inputs: { n: 10n } }))
      )
      assert.strictEqual(error._tag, "BadRequest")
      assert.strictEqual(api(zapier).length, 0)
    }).pipe(Effect.provide(runs(zapier)))
  })
})

describe("HttpActionRuns.get", () => {
  const getWith = (answer: Response) => {
    const zapier = fakeZapier(() => answer.clone())
    return Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, runId)).pipe(
      Effect.provide(runs(zapier)),
      Effect.map((state) => ({ state, request: api(zapier)[0]! }))
    )
  }

  it.effect("GETs /v2/action-runs/{id}/ and maps success (array or object results)", () =>
    Effect.gen(function* () {
      const { state, request } = yield* getWith(
        json({ data: { type: "run", status: "success", results: [{ id: 123 }], errors: [] } })
      )
      assert.strictEqual(request.method, "GET")
      assert.strictEqual(request.url.href, "https://api.zapier.com/v2/action-runs/arun_abc123/")
      assert.strictEqual(bearerOf(request), "access-token-canary-1")
      assert.deepStrictEqual(state, Domain.RunSucceeded.make({ runId, results: [{ id: 123 }] }))
      const object = yield* getWith(json({ data: { run_id: "arun_abc123", status: "success", results: { ok: 1 } } }))
      assert.deepStrictEqual(object.state, Domain.RunSucceeded.make({ runId, results: [{ ok: 1 }] }))
      const empty = yield* getWith(json({ data: { status: "success" } }))
      assert.deepStrictEqual(empty.state, Domain.RunSucceeded.make({ runId, results: [] }))
    })
  )

  it.effect("maps error to RunFailed with Zapier's errors (delay in seconds → Duration)", () =>
    Effect.gen(function* () {
      const { state } = yield* getWith(
        json({
          data: {
            status: "error",
            results: [],
            errors: [
              { code: "authentication", title: "Auth", detail: "Reconnect Slack", delay: null, meta: null },
              { code: "throttled", title: "Slow down", delay: 30 }
            ]
          }
        })
      )
      assert.deepStrictEqual(
        state,
        Domain.RunFailed.make({
          runId,
          errors: [
            Domain.RunError.make({ code: "authentication", title: "Auth", detail: "Reconnect Slack" }),
            Domain.RunError.make({ code: "throttled", title: "Slow down", delay: Duration.seconds(30) })
          ]
        })
      )
    })
  )

  it.effect("waiting, queued, running, unknown and missing statuses, and any HTTP 202, are pending", () =>
    Effect.gen(function* () {
      for (const status of ["waiting", "queued", "running", "paused_for_reasons"]) {
        const { state } = yield* getWith(json({ data: { type: "run", status, results: [], errors: [] } }))
        assert.deepStrictEqual(state, Domain.RunPending.make({ runId, status }), status)
      }
      const missing = yield* getWith(json({ data: { type: "run" } }))
      assert.deepStrictEqual(missing.state, Domain.RunPending.make({ runId, status: "unknown" }))
      const accepted = yield* getWith(new Response(null, { status: 202 }))
      assert.deepStrictEqual(accepted.state, Domain.RunPending.make({ runId, status: "accepted" }))
      const acceptedSuccess = yield* getWith(json({ data: { status: "success", results: [] } }, 202))
      assert.strictEqual(acceptedSuccess.state._tag, "RunPending")
    })
  )

  it.effect("an unknown status is logged once, as a warning, without secrets", () => {
    const zapier = fakeZapier(() => json({ data: { status: "teleporting" } }))
    const logs = captureLogs()
    return Effect.gen(function* () {
      const actionRuns = yield* ActionRuns.ActionRuns
      yield* actionRuns.get(user, runId)
      yield* actionRuns.get(user, runId)
      const warnings = logs.lines.filter((l) => l.includes("level=WARN") && l.includes("teleporting"))
      assert.strictEqual(warnings.length, 1)
    }).pipe(Effect.provide(runs(zapier)), Effect.provide(logs.layer))
  })

  it.effect("a pending run carries the server's hint: a throttled error's delay or Retry-After (the larger)", () =>
    Effect.gen(function* () {
      const throttled = yield* getWith(
        json({ data: { status: "waiting", errors: [{ code: "system_throttled", title: "Throttled", delay: 12 }] } })
      )
      assert.deepStrictEqual(
        throttled.state,
        Domain.RunPending.make({ runId, status: "waiting", retryAfter: Duration.seconds(12) })
      )
      const header = yield* getWith(json({ data: { status: "running" } }, 200, { "retry-after": "7" }))
      assert.deepStrictEqual(
        header.state,
        Domain.RunPending.make({ runId, status: "running", retryAfter: Duration.seconds(7) })
      )
      const both = yield* getWith(
        json({ data: { status: "queued", errors: [{ code: "throttled", title: "T", delay: 3 }] } }, 202, {
          "retry-after": "9"
        })
      )
      assert.deepStrictEqual(
        both.state,
        Domain.RunPending.make({ runId, status: "queued", retryAfter: Duration.seconds(9) })
      )
    })
  )

  it.effect("404 is NotFound naming the run", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        getWith(json({ errors: [{ status: 404, code: "not_found", title: "Not found" }] }, 404))
      )
      assert.strictEqual(error._tag, "NotFound")
      if (error._tag === "NotFound") {
        assert.strictEqual(error.resource, "action run arun_abc123")
        assert.strictEqual(error.endpoint, "GET /v2/action-runs/{id}/")
      }
    })
  )
})

describe("HttpActionRuns.get spans", () => {
  // README, Spans: the platform's http.client span of each attempt is dropped by setting
  // HttpClient.currentTracerDisabledWhen once around the program (the attempt's fiber inherits the caller's fiber
  // refs); the library's own spans stay. On the live clock, so the attempt runs in its own fiber.
  const read = (disabled: boolean) =>
    Effect.gen(function* () {
      const spans = captureSpans()
      const zapier = fakeZapier(() => json({ data: { status: "success", results: [] } }))
      const get = Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, runId)).pipe(
        Effect.provide(runs(zapier)),
        Effect.provide(spans.layer)
      )
      yield* disabled ? Effect.locally(get, HttpClient.currentTracerDisabledWhen, () => true) : get
      return spans.spans.map((s) => s.name)
    })

  it.live("each attempt has the platform's http.client span, unless the program turns it off once", () =>
    Effect.gen(function* () {
      const traced = yield* read(false)
      assert.include(traced, "ActionRuns.get")
      assert.include(traced, "http.client GET")
      const quiet = yield* read(true)
      assert.include(quiet, "ActionRuns.get")
      assert.isFalse(
        quiet.some((name) => name.startsWith("http.client")),
        quiet.join(", ")
      )
    })
  )
})

describe("HttpActionRuns.get says when its read went out (ActionRuns.ReadSent)", () => {
  /** A rate limiter whose every slot takes 3 s to come (the TestClock's). */
  const slowSlots = Layer.succeed(
    RateLimiter.RateLimiter,
    RateLimiter.RateLimiter.of({ take: () => Effect.sleep("3 seconds"), pause: () => Effect.void })
  )
  const succeeded = () => json({ data: { status: "success", results: [] } })
  const readReported = (reported: Array<number>) =>
    Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, runId)).pipe(
      Effect.provideService(ActionRuns.ReadSent, (sentAt) => {
        reported.push(sentAt)
      })
    )

  it.effect("each attempt as it goes out, after its slot and a retry's delay; a held read says nothing", () => {
    let reads = 0
    const zapier = fakeZapier(() =>
      reads++ === 0
        ? json({ errors: [{ status: 503, code: "unavailable", title: "Unavailable" }] }, 503, { "retry-after": "2" })
        : succeeded()
    )
    const held = fakeZapier(succeeded)
    return Effect.gen(function* () {
      const reported: Array<number> = []
      const exit = yield* driveClock(
        readReported(reported).pipe(
          Effect.provide(ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer), Layer.provide(slowSlots)))
        ),
        "1 second"
      )
      assert.isTrue(Exit.isSuccess(exit) && exit.value._tag === "RunSucceeded")
      const sent = api(zapier).map((r) => r.at)
      // 3 s for a slot, the 503, its Retry-After of 2 s, 3 s for a slot again: the answer's read went out at 8 s.
      assert.deepStrictEqual(sent, [3_000, 8_000])
      assert.deepStrictEqual(reported, sent)
      const longPoll: Array<number> = []
      const read = yield* readReported(longPoll).pipe(
        Effect.provide(ZapierHttp.layer(options(keys, { runReads: "long-poll" })).pipe(Layer.provide(held.layer)))
      )
      assert.strictEqual(read._tag, "RunSucceeded")
      assert.strictEqual(held.requests.filter((r) => r.path.startsWith("/actions/v2/runs/")).length, 1)
      assert.deepStrictEqual(longPoll, [])
    })
  })
})

describe("HttpActionRuns.get span attributes", () => {
  const readUnder = (status: string, wrap: <A, E, R>(get: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const spans = captureSpans()
      const zapier = fakeZapier(() => json({ data: { status, results: [] } }))
      const get = Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, runId))
      const state = yield* wrap(get).pipe(Effect.provide(runs(zapier)), Effect.provide(spans.layer))
      return { state, spans: spans.spans }
    })

  it.effect("zapier.run_id and zapier.run_status are set on the ActionRuns.get span, not on its caller's", () =>
    Effect.gen(function* () {
      for (const [status, expected] of [
        ["success", "RunSucceeded"],
        ["error", "RunFailed"],
        ["running", "running"]
      ] as const) {
        const { spans } = yield* readUnder(status, (get) => Effect.withSpan(get, "caller"))
        const get = spans.find((s) => s.name === "ActionRuns.get")!
        assert.strictEqual(get.attributes.get("zapier.run_id"), runId)
        assert.strictEqual(get.attributes.get("zapier.run_status"), expected)
        const caller = spans.find((s) => s.name === "caller")!
        assert.isFalse(caller.attributes.has("zapier.run_id"))
        assert.isFalse(caller.attributes.has("zapier.run_status"))
      }
    })
  )

  it.effect("with tracing off inside a traced caller, they go where Effect.annotateCurrentSpan puts them", () =>
    Effect.gen(function* () {
      // ActionRuns.get's span is then a no-op span; annotateCurrentSpan annotates the propagated parent.
      const { state, spans } = yield* readUnder("success", (get) =>
        Effect.withSpan(Effect.withTracerEnabled(get, false), "caller")
      )
      assert.strictEqual(state._tag, "RunSucceeded")
      assert.isFalse(spans.some((s) => s.name === "ActionRuns.get"))
      const caller = spans.find((s) => s.name === "caller")!
      assert.strictEqual(caller.attributes.get("zapier.run_id"), runId)
      assert.strictEqual(caller.attributes.get("zapier.run_status"), "RunSucceeded")
    })
  )
})
