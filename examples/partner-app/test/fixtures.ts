/**
 * Test fixtures: a fake Zapier (built once per test, outliving the partner apps started on it), partner apps on
 * 127.0.0.1 with a fresh data folder, and a tiny HTTP client with a cookie jar.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeHttpClient } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import type { FakeZapier } from "@effect-zapier/testing"
import { type Context, Duration, Effect, Exit, Layer, Redacted, Scope } from "effect"
import * as PartnerApp from "../src/PartnerApp.js"
import * as Zapier from "../src/Zapier.js"

/** A fresh data folder, removed when the scope closes. */
export const dataDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "partner-app-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

export const SESSION_SECRET = "canary-session-secret-0123456789abcdef"

export const options = (dir: string, overrides: Partial<PartnerApp.Options> = {}): PartnerApp.Options => ({
  port: 0,
  host: "127.0.0.1",
  dataDir: dir,
  sessionSecret: Redacted.make(SESSION_SECRET),
  sessionLifetime: Duration.hours(1),
  secureCookies: false,
  apps: PartnerApp.parseApps("slack,google-sheets,formatter:noauth"),
  ...overrides
})

/**
 * A port free right now on 127.0.0.1: for an app whose own URL must be known before it starts (the callback URL of
 * its connection-webhook subscription, whose secret the app starts with).
 */
export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The fake Zapier (server, control tag, and the library's services pointed at it), in the current scope. */
export const fakeZapier = (fakeOptions: Parameters<typeof Zapier.layerFake>[0] = {}) =>
  Layer.build(Zapier.layerFake(fakeOptions).pipe(Layer.provide(NodeHttpClient.layerUndici)))

export type FakeContext = Effect.Effect.Success<ReturnType<typeof fakeZapier>>

/** A partner app on the fake, in a scope of its own; `close` stops it (its background fibers too). */
export const partnerApp = (zapier: FakeContext, appOptions: PartnerApp.Options) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      PartnerApp.layer(appOptions).pipe(Layer.provide(Layer.succeedContext(zapier))),
      scope
    ).pipe(Effect.tapErrorCause(() => Scope.close(scope, Exit.void)))
    const url = yield* Effect.provide(PartnerApp.url, context)
    const close = Scope.close(scope, Exit.void)
    yield* Effect.addFinalizer(() => close)
    return { url, close, context: context as Context.Context<unknown> }
  })

export interface Answer {
  readonly status: number
  readonly body: unknown
  readonly headers: Headers
}

/** A client with one cookie jar (the session cookie), like one browser. */
export const client = (base: string) => {
  let cookie: string | undefined
  const call = (method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}) =>
    Effect.promise(async (): Promise<Answer> => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(cookie !== undefined ? { cookie } : {}),
          ...extraHeaders
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: "manual"
      })
      const setCookie = response.headers.get("set-cookie")
      if (setCookie !== null) cookie = setCookie.split(";")[0]
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text.length > 0 ? JSON.parse(text) : undefined
      } catch {
        parsed = text
      }
      return { status: response.status, body: parsed, headers: response.headers }
    })
  return {
    call,
    login: (userId: string, tenantId: string) => call("POST", "/api/session", { userId, tenantId }),
    get cookie() {
      return cookie
    },
    setCookie: (value: string | undefined) => {
      cookie = value
    }
  }
}

/**
 * Connects `app` for the client's logged-in user the way the page does: the 409's Connect link, approved in the
 * fake's Connect UI (popup), its payload posted back. Answers the connection id.
 */
export const connectApp = (
  c: ReturnType<typeof client>,
  control: Context.Tag.Service<FakeZapier.FakeZapier>,
  app: string
) =>
  Effect.gen(function* () {
    const needed = yield* c.call("GET", `/api/apps/${app}/connection`)
    assert.strictEqual(needed.status, 409)
    const link = String((needed.body as { readonly connectUrl?: unknown }).connectUrl)
    const payload = yield* control.approveConnect(link, { mode: "popup" })
    const connected = yield* c.call("POST", `/api/apps/${app}/connection`, payload)
    assert.strictEqual(connected.status, 200)
    return String((connected.body as { readonly id?: unknown }).id)
  })

/**
 * Polls `GET /api/runs/:id` until the run is no longer pending (real time; the fake's runs take ≤ 2 s). The guard
 * is real time, not a number of polls, and only catches a hang.
 */
export const settled = (c: ReturnType<typeof client>, runId: string) =>
  Effect.gen(function* () {
    for (;;) {
      const answer = yield* c.call("GET", `/api/runs/${runId}`)
      const body = answer.body as { state?: string }
      if (answer.status !== 200 || body.state !== "pending") return answer
      yield* Effect.sleep("50 millis")
    }
  }).pipe(
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error(`run ${runId} still pending after 60 s`)
    }),
    Effect.orDie
  )
