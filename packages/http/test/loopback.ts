/**
 * The loopback kit of the integration tests (Integration.test.ts, ConnectCallback.test.ts): FakeZapierServer on
 * 127.0.0.1, the live client over undici with a tap that collects every secret the client sends (the canaries),
 * a capture of every log line (at every level) and of every error a test saw, and a browser that follows Connect
 * links over HTTP the way the quickstart does.
 */

import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ConnectionStore, type Domain, EmbeddedActions, Polling } from "@effect-zapier/core"
import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import { ZapierHttp } from "../src/index.js"

const { sample } = FakeZapier

/** The partner's key pair; the fake knows only its public half. */
export const key = await Effect.runPromise(PartnerKey.generate({ alg: "ES256", kid: "partner-key-2026" }))

/** A client secret distinctive enough to be grepped for. */
export const CLIENT_SECRET = "canary-client-secret-9d2e71b4c0a6"

/** The sample catalog, with the canary client secret and the partner key registered. */
export const seed: FakeZapier.Seed = PartnerKey.register(
  { ...FakeZapier.sampleSeed, partner: { ...FakeZapier.sampleSeed.partner, clientSecret: CLIENT_SECRET } },
  key
)

/** The secrets of the key itself: every line of the PEM's body, and the private JWK's `d`. */
const keySecrets: ReadonlyArray<string> = [
  ...Redacted.value(key.privateKeyPem)
    .split("\n")
    .filter((line) => line.length > 0 && !line.startsWith("-----")),
  JSON.parse(Redacted.value(key.privateJwk)).d as string
]

/** What a test saw: log lines, errors, and the secrets the client sent (with the partner JWTs apart). */
export interface Capture {
  readonly lines: Array<string>
  readonly errors: Array<unknown>
  readonly secrets: Set<string>
  readonly jwts: Array<string>
}

export class Captured extends Context.Tag("test/loopback/Captured")<Captured, Capture>() {}

export const newCapture = (): Capture => ({
  lines: [],
  errors: [],
  secrets: new Set([CLIENT_SECRET, ...keySecrets]),
  jwts: []
})

const bodyText = (request: HttpClientRequest.HttpClientRequest): string =>
  request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""

/** Collects the secrets of one outgoing request: form credentials and subject tokens, bearer tokens, `token=`. */
const collect = (capture: Capture, request: HttpClientRequest.HttpClientRequest) => {
  const form = new URLSearchParams(bodyText(request))
  for (const name of ["client_secret", "subject_token"]) {
    const value = form.get(name)
    if (value !== null && value.length > 0) capture.secrets.add(value)
  }
  const subject = form.get("subject_token")
  if (subject !== null && subject.split(".").length === 3) capture.jwts.push(subject)
  const bearer = request.headers.authorization?.replace(/^Bearer\s+/i, "")
  if (bearer !== undefined && bearer.length > 0) capture.secrets.add(bearer)
  const connectToken = new URL(request.url).searchParams.get("token")
  if (connectToken !== null && connectToken.length > 0) capture.secrets.add(connectToken)
}

/** Every log line, at every level, in logfmt with annotations and causes. */
export const logCapture = (capture: Capture): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make((options) => {
        capture.lines.push(Logger.logfmtLogger.log(options))
      })
    ),
    Logger.minimumLogLevel(LogLevel.All)
  )

/** Polling scaled down for real time: 100 ms, ×1.5, 300 ms cap. */
export const fastPolling: Polling.PolicyShape = {
  ...Polling.defaults,
  initialDelay: Duration.millis(100),
  maxDelay: Duration.millis(300)
}

export interface StackOptions {
  readonly seed?: FakeZapier.Seed | undefined
  readonly server?: Omit<FakeZapierServer.Options, "seed"> | undefined
  readonly client?: Partial<ZapierHttp.Options> | undefined
}

export type Services =
  | ZapierHttp.Services
  | EmbeddedActions.EmbeddedActions
  | ConnectionStore.ConnectionStore
  | HttpClient.HttpClient
  | FakeZapierServer.FakeZapierServer
  | FakeZapier.FakeZapier
  | Polling.Policy
  | Captured

/** The client's options for the running fake (the sample partner, the canary secret, http: on loopback). */
export const clientOptions = (server: FakeZapierServer.Service): ZapierHttp.Options => ({
  clientId: sample.clientId,
  clientSecret: Redacted.make(CLIENT_SECRET),
  signingKey: key.privateKeyPem,
  keyId: key.kid,
  algorithm: key.alg,
  issuer: sample.issuer,
  apiUrl: server.apiUrl,
  tokenUrl: server.tokenUrl,
  connectUrl: server.connectUrl,
  allowInsecureHttp: true
})

/**
 * FakeZapierServer on 127.0.0.1 → the live client over undici (tapped) → core's EmbeddedActions with the
 * in-memory ConnectionStore and fast polling. The server's clock is the one in scope when it is built.
 */
export const stack = (capture: Capture, options: StackOptions = {}): Layer.Layer<Services, unknown> => {
  const Server = FakeZapierServer.layer({ seed: options.seed ?? seed, ...options.server })
  const Client = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) =>
      HttpClient.tapRequest(client, (request) => Effect.sync(() => collect(capture, request)))
    )
  ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  const Zapier = Layer.unwrapEffect(
    Effect.map(FakeZapierServer.FakeZapierServer, (server) =>
      ZapierHttp.layer({ ...clientOptions(server), ...options.client })
    )
  )
  return EmbeddedActions.layer.pipe(
    Layer.provideMerge(Zapier),
    Layer.provideMerge(ConnectionStore.layerMemory),
    Layer.provideMerge(Client),
    Layer.provideMerge(Server),
    Layer.provideMerge(Layer.succeed(Polling.Policy, fastPolling)),
    Layer.provideMerge(Layer.succeed(Captured, capture))
  )
}

/** Fails the test if any secret the client sent (or the key's) shows in a log line or an error a test saw. */
export const assertNoLeaks = (capture: Capture): void => {
  const sinks: Array<string> = [...capture.lines]
  for (const error of capture.errors) {
    sinks.push(
      error instanceof Error ? error.message : String(error),
      JSON.stringify(error),
      String(error),
      Cause.pretty(Cause.fail(error))
    )
  }
  for (const secret of capture.secrets) {
    for (const sink of sinks) {
      if (sink.includes(secret)) {
        throw new Error(`a secret (${secret.slice(0, 6)}…, ${secret.length} chars) leaked into: ${sink.slice(0, 300)}`)
      }
    }
  }
}

/**
 * Runs a test body against a fresh stack (fresh server, model, client, store) with every log line captured,
 * then checks that no secret leaked.
 */
export const withStack =
  (options: StackOptions = {}) =>
  <A, E>(body: Effect.Effect<A, E, Services>): Effect.Effect<A, E | unknown> => {
    const capture = newCapture()
    return body.pipe(
      Effect.provide(stack(capture, options)),
      Effect.provide(logCapture(capture)),
      Effect.tap(() => Effect.sync(() => assertNoLeaks(capture)))
    )
  }

/** The typed failure of `effect` (a test expects it to fail); recorded for the leak check. */
export const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R | Captured> =>
  Effect.flip(effect).pipe(
    Effect.catchAllDefect((defect) => Effect.dieMessage(`expected a typed failure, got a defect: ${String(defect)}`)),
    Effect.orElse(() => Effect.dieMessage("expected a failure, but it succeeded")),
    Effect.tap((error) => Effect.map(Captured, (capture) => capture.errors.push(error)))
  ) as Effect.Effect<E, never, R | Captured>

/** The link of the `ConnectionRequired` that `ensureConnection` must fail with. */
export const connectLink = (user: Domain.EndUser, app: Domain.AppId, redirectUri?: string) =>
  Effect.gen(function* () {
    const actions = yield* EmbeddedActions.EmbeddedActions
    const required = yield* failureOf(actions.ensureConnection(user, app, redirectUri ? { redirectUri } : {}))
    if (required._tag !== "ConnectionRequired" || required.link === undefined) {
      return yield* Effect.dieMessage(`expected ConnectionRequired with a link, got ${required._tag}`)
    }
    return { required, link: required.link }
  })

/** One answer as a browser sees it (redirects are not followed). */
export interface Answer {
  readonly status: number
  readonly location: string | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** A browser GET (optionally with the partner's session cookie). */
export const visit = (url: string, session?: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.get(url).pipe(
      session !== undefined ? HttpClientRequest.setHeader("cookie", `session=${session}`) : (r) => r
    )
    const response = yield* client.execute(request)
    const body = yield* response.text
    return { status: response.status, location: response.headers.location, headers: response.headers, body }
  }).pipe(Effect.scoped, Effect.orDie)

/**
 * The end user in Connect UI, over HTTP: open the link, press Approve (or Deny), and return where Connect UI
 * sends the browser (the `Location` of its redirect to the link's `redirect_uri`).
 */
export const decideInConnectUi = (linkUrl: string, decision: "approve" | "deny" = "approve") =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const page = yield* visit(linkUrl)
    const session = /name="session" value="([^"]+)"/.exec(page.body)?.[1]
    if (session === undefined) {
      return yield* Effect.dieMessage(`Connect UI offered no approval form (HTTP ${page.status})`)
    }
    const form = HttpClientRequest.post(new URL(new URL(linkUrl).pathname, linkUrl).toString()).pipe(
      HttpClientRequest.bodyUrlParams({ session, decision })
    )
    const answer = yield* client.execute(form).pipe(Effect.scoped, Effect.orDie)
    const location = answer.headers.location
    if (location === undefined) return yield* Effect.dieMessage(`Connect UI did not redirect (HTTP ${answer.status})`)
    return location
  })
