/**
 * Canary secrets (client secret, private key, partner JWTs, access and connect tokens) must appear nowhere:
 * not in error messages, JSON.stringify of errors, Cause.pretty, log lines or span attributes, even when the
 * server echoes them back in its error bodies.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionCatalog, ActionRuns, Connections, Domain, TokenExchange } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { ZapierHttp } from "../src/index.js"
import {
  type Answer,
  app,
  bearerOf,
  CLIENT_SECRET,
  captureLogs,
  captureSpans,
  driveClock,
  generateKeys,
  json,
  options,
  type Recorded,
  scriptedClient,
  user
} from "./kit.js"

const keys = await generateKeys("ES256")
const pemBody = keys.pem
  .split("\n")
  .filter((l) => !l.startsWith("-----"))
  .join("")
const jwkD = JSON.parse(keys.jwk).d as string

const run: ActionRuns.CreateRun = {
  action: Domain.ActionId.make("uag:a-1"),
  connection: Domain.ConnectionId.make("c1"),
  inputs: { text: "input-canary-value" }
}

/** A hostile Zapier: echoes every secret it sees into its error bodies. */
const echoing = (api: (request: Recorded, echo: string) => Answer) => {
  const jwts: Array<string> = []
  let exchanges = 0
  const client = scriptedClient((request) => {
    if (request.path === "/oauth/token") {
      const subject = request.form.get("subject_token") ?? ""
      if (subject.split(".").length === 3) jwts.push(subject)
      const echo = `client_secret=${request.form.get("client_secret")} subject=${subject}`
      if (request.form.get("scope") === "fail") {
        return json({ error: "invalid_grant", error_description: `bad ${echo}` }, 400)
      }
      if (request.form.get("requested_token_type")?.endsWith("connect-token")) {
        return json({ error: "invalid_target", error_description: `refused ${echo}` }, 400)
      }
      exchanges++
      return json({ access_token: `access-token-canary-${exchanges}`, expires_in: 3600 })
    }
    return api(request, `Bearer ${bearerOf(request)} body=${request.body}`)
  })
  return { client, jwts }
}

const scenarios: Array<{
  readonly name: string
  readonly api: (request: Recorded, echo: string) => Answer
  readonly program: Effect.Effect<unknown, unknown, ZapierHttp.Services>
  readonly extra?: Partial<ZapierHttp.Options>
}> = [
  {
    name: "token endpoint refuses and echoes the client secret and JWT",
    api: () => json({}),
    program: Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)),
    extra: { scope: "fail" }
  },
  {
    name: "connect exchange refused, echoing the access token",
    api: () => json({}),
    program: Effect.flatMap(Connections.Connections, (c) => c.connectLink(user, app))
  },
  {
    name: "401 twice with the bearer token echoed",
    api: (_, echo) => json({ errors: [{ status: 401, code: "unauthorized", title: "No", detail: echo }] }, 401),
    program: Effect.flatMap(Connections.Connections, (c) => c.list(user, app))
  },
  {
    name: "400 with the token and the body echoed",
    api: (_, echo) => json({ errors: [{ status: "400", code: "invalid", title: echo, detail: echo }] }, 400),
    program: Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run))
  },
  {
    name: "500 on create with the token in the body",
    api: (_, echo) => json({ errors: [{ status: 500, code: "error", title: "APIException", detail: echo }] }, 500),
    program: Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run))
  },
  {
    name: "a 200 that does not decode, containing the token",
    api: (_, echo) => json({ data: { status: 42, echo } }),
    program: Effect.flatMap(ActionRuns.ActionRuns, (r) => r.get(user, Domain.ActionRunId.make("r1")))
  },
  {
    name: "an HTML page with the token",
    api: (_, echo) => new Response(`<html>${echo}</html>`, { status: 200 }),
    program: Effect.flatMap(ActionCatalog.ActionCatalog, (c) => c.list(user, app))
  },
  {
    name: "a reset on create",
    api: () => "reset",
    program: Effect.flatMap(ActionRuns.ActionRuns, (r) => r.create(user, run))
  },
  {
    name: "a hang on a GET (timeouts and retries logged)",
    api: () => "hang",
    program: Effect.flatMap(Connections.Connections, (c) => c.list(user, app)),
    extra: { requestTimeout: Duration.seconds(1) }
  },
  {
    name: "429 above the cap with the token echoed",
    api: (_, echo) =>
      json({ errors: [{ status: 429, code: "throttled", title: echo }] }, 429, { "retry-after": "600" }),
    program: Effect.flatMap(ActionCatalog.ActionCatalog, (c) => c.resolve(user, app, Domain.ActionKey.make("k")))
  }
]

describe("no secret leaks", () => {
  for (const scenario of scenarios) {
    it.effect(scenario.name, () =>
      Effect.gen(function* () {
        const hostile = echoing(scenario.api)
        const logs = captureLogs()
        const spans = captureSpans()
        const live = ZapierHttp.layer(options(keys, scenario.extra)).pipe(Layer.provide(hostile.client.layer))
        const exit = yield* driveClock(
          scenario.program.pipe(Effect.provide(live), Effect.provide(logs.layer), Effect.provide(spans.layer)),
          Duration.millis(500)
        )
        assert.isTrue(Exit.isFailure(exit), "the scenario must fail")
        if (!Exit.isFailure(exit)) return
        const failure = Cause.failureOption(exit.cause)
        assert.isTrue(failure._tag === "Some", `a typed failure, not a defect: ${Cause.pretty(exit.cause)}`)
        const error = failure._tag === "Some" ? failure.value : undefined
        const sinks = [
          String(error),
          error instanceof Error ? error.message : "",
          JSON.stringify(error),
          Cause.pretty(exit.cause),
          ...logs.lines,
          ...spans.spans.flatMap((s) => [s.name, ...[...s.attributes].map(([k, v]) => `${k}=${String(v)}`)])
        ].join("\n")
        const canaries = [
          CLIENT_SECRET,
          pemBody.slice(0, 40),
          pemBody.slice(-40),
          jwkD,
          "access-token-canary",
          "connect-token-canary",
          ...hostile.jwts,
          ...hostile.jwts.map((jwt) => jwt.split(".")[2]!)
        ]
        for (const canary of canaries) assert.notInclude(sinks, canary, `leaked ${canary.slice(0, 12)}…`)
        // Inputs are the user's data, not secrets: Zapier's own error details may quote them (that helps fix a bad
        // input), but the library never puts them in a log line or a span.
        const telemetry = [
          ...logs.lines,
          ...spans.spans.flatMap((s) => [...s.attributes].map(([k, v]) => `${k}=${String(v)}`))
        ].join("\n")
        assert.notInclude(telemetry, "input-canary-value")
        // The sinks were really captured.
        if (scenario.name.startsWith("a hang")) assert.isTrue(logs.lines.some((l) => l.includes("retrying")))
        assert.isTrue(sinks.includes((error as { _tag: string })._tag))
      })
    )
  }

  it.effect("a Redacted secret never prints from the options either", () =>
    Effect.sync(() => {
      const opts = options(keys)
      const printed = `${String(opts.clientSecret)} ${JSON.stringify(opts)} ${String(opts.signingKey)}`
      assert.notInclude(printed, CLIENT_SECRET)
      assert.notInclude(printed, pemBody.slice(0, 40))
      assert.strictEqual(Redacted.value(opts.clientSecret), CLIENT_SECRET)
    })
  )

  it.effect("spans are named after the service methods and carry safe attributes only", () =>
    Effect.gen(function* () {
      const hostile = echoing((request) =>
        request.path === "/v2/action-runs/"
          ? json({ data: { type: "run", id: "run-1" } })
          : request.path.startsWith("/v2/action-runs/")
            ? json({ data: { status: "success", results: [] } })
            : request.path === "/v2/actions"
              ? json({ data: [{ id: "uag:k-1", key: "k", action_type: "WRITE", title: "K" }] })
              : json({ data: [{ id: "c1", app, is_expired: false }] })
      )
      const spans = captureSpans()
      const live = ZapierHttp.layer(options(keys)).pipe(Layer.provide(hostile.client.layer))
      yield* Effect.gen(function* () {
        const connections = yield* Connections.Connections
        const catalog = yield* ActionCatalog.ActionCatalog
        const runs = yield* ActionRuns.ActionRuns
        yield* connections.list(user, app)
        const action = yield* catalog.resolve(user, app, Domain.ActionKey.make("k"))
        const runId = yield* runs.create(user, { ...run, action: action.id })
        yield* runs.get(user, runId)
      }).pipe(Effect.provide(live), Effect.provide(spans.layer))
      const names = new Set(spans.spans.map((s) => s.name))
      for (const name of [
        "TokenExchange.accessToken",
        "Connections.list",
        "ActionCatalog.resolve",
        "ActionRuns.create",
        "ActionRuns.get"
      ]) {
        assert.isTrue(names.has(name), name)
      }
      const resolve = spans.spans.find((s) => s.name === "ActionCatalog.resolve")!
      assert.strictEqual(resolve.attributes.get("zapier.app"), app)
      assert.strictEqual(resolve.attributes.get("zapier.action_key"), "k")
      const get = spans.spans.find((s) => s.name === "ActionRuns.get")!
      assert.strictEqual(get.attributes.get("zapier.run_id"), "run-1")
      const everything = spans.spans
        .flatMap((s) => [...s.attributes].map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`))
        .join("\n")
      assert.notInclude(everything, "access-token-canary")
      assert.notInclude(everything, "input-canary-value")
      assert.notInclude(everything, CLIENT_SECRET)
    })
  )
})

describe("encoded echoes of a secret", () => {
  // Secrets with every character that encodings change: + / = & % (and a space in the token).
  const SECRET = "s3cr+t/==&%25-canary+/7Qz&x=1"
  const TOKEN = "tok+en/=&% canary-4f1a/+=="

  const base64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)))
  const base64url = (text: string) => base64(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
  const formEncoded = (text: string) => new URLSearchParams({ v: text }).toString().slice(2)

  /** How a hostile server could echo `text` (a form body, a token). */
  const encodings: ReadonlyArray<readonly [string, (text: string) => string]> = [
    ["raw", (text) => text],
    ["encodeURIComponent", encodeURIComponent],
    [
      "encodeURIComponent, lower-case hex",
      (text) => encodeURIComponent(text).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())
    ],
    ["form (+ for space)", formEncoded],
    ["base64", base64],
    ["base64url", base64url],
    ["base64 of client:secret (Basic auth)", (text) => base64(`partner-client:${text}`)],
    ["base64 at offset 1", (text) => base64(`x${text}`)],
    ["base64url at offset 2", (text) => base64url(`xy${text}`)]
  ]

  /** The shapes of `secret` that must never show (every base64 alignment's stable middle included). */
  const shapesOf = (secret: string): ReadonlyArray<string> => {
    const bytes = new TextEncoder().encode(secret)
    const cores: Array<string> = []
    for (let k = 0; k < 3; k++) {
      const padded = new Uint8Array(k + bytes.length)
      padded.set(bytes, k)
      const b = btoa(String.fromCharCode(...padded))
      const core = b.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6))
      cores.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"))
    }
    return [secret, encodeURIComponent(secret), formEncoded(secret), ...cores]
  }

  const sinksOf = (exit: Exit.Exit<unknown, unknown>, lines: ReadonlyArray<string>): string => {
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
    const error = failure?._tag === "Some" ? failure.value : undefined
    return [
      String(error),
      error instanceof Error ? error.message : "",
      JSON.stringify(error),
      Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "",
      ...lines
    ].join("\n")
  }

  it.effect("the client secret echoed by the token endpoint, in every encoding: 0 leaks", () =>
    Effect.gen(function* () {
      const leaked: Array<string> = []
      for (const [name, encode] of encodings) {
        // The token endpoint echoes the whole form body (where the secret is form-encoded), and the secret alone.
        const zapier = scriptedClient((request) =>
          json(
            {
              error: "invalid_client",
              error_description: `body: ${encode(request.body)} secret: ${encode(request.form.get("client_secret") ?? "")}`
            },
            401
          )
        )
        const logs = captureLogs()
        const live = ZapierHttp.layer(options(keys, { clientSecret: Redacted.make(SECRET) })).pipe(
          Layer.provide(zapier.layer)
        )
        const exit = yield* driveClock(
          Effect.flatMap(TokenExchange.TokenExchange, (t) => t.accessToken(user)).pipe(
            Effect.provide(live),
            Effect.provide(logs.layer)
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(zapier.requests[0]?.form.get("client_secret"), SECRET)
        const sinks = sinksOf(exit, logs.lines)
        assert.include(sinks, "TokenExchangeFailed")
        for (const shape of shapesOf(SECRET)) if (sinks.includes(shape)) leaked.push(`${name}: ${shape}`)
      }
      assert.deepStrictEqual(leaked, [])
    })
  )

  it.effect("the access token echoed in Zapier's errors[], in every encoding: 0 leaks", () =>
    Effect.gen(function* () {
      const leaked: Array<string> = []
      for (const [name, encode] of encodings) {
        const zapier = scriptedClient((request) =>
          request.path === "/oauth/token"
            ? json({ access_token: TOKEN, expires_in: 3600 })
            : json(
                {
                  errors: [
                    {
                      status: 400,
                      code: "invalid",
                      title: `auth ${encode(request.headers.authorization ?? "")}`,
                      detail: `token ${encode(bearerOf(request) ?? "")}`
                    }
                  ]
                },
                400
              )
        )
        const logs = captureLogs()
        const live = ZapierHttp.layer(options(keys)).pipe(Layer.provide(zapier.layer))
        const exit = yield* driveClock(
          Effect.flatMap(Connections.Connections, (c) => c.list(user, app)).pipe(
            Effect.provide(live),
            Effect.provide(logs.layer)
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        const sinks = sinksOf(exit, logs.lines)
        assert.include(sinks, "BadRequest")
        for (const shape of shapesOf(TOKEN)) if (sinks.includes(shape)) leaked.push(`${name}: ${shape}`)
      }
      assert.deepStrictEqual(leaked, [])
    })
  )
})
