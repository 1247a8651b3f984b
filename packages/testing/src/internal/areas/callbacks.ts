/**
 * Area: run callbacks. When a run created with a `callback_url` ends, the fake POSTs
 * `{"data":{"type":"run","id","status","results","errors"}}` to it over real HTTP, with the header
 * `Zapier-Callback-Signature`: an RS256 JWT signed with the fake's RSA key, whose public half the server
 * serves at `GET /.well-known/jwks.json`. The key is made once per process and shared by every fake built in it
 * (as Zapier signs every callback with its one published key): an RSA-2048 key pair costs 0.1-0.5 s of CPU, and
 * a test suite builds the fake per test, hundreds of times. Like Zapier, it retries on a 5xx or a network error (3 attempts in
 * all, backing off), never on a 4xx, and can be planned to drop a delivery or to deliver it twice. Every attempt
 * is in the ledger (`callbacks`); a fetch of the key set is a request in the ledger.
 *
 * The claims: `iss`, `iat`, `exp` (5 minutes) and `jti` always; with `claims: "bound"` also `run_id` and
 * `body_sha256` (the hex SHA-256 of the body). Zapier documents only the signature, `iat` and `exp`; the bound
 * claims let a receiver's optional checks be tested.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Jose from "jose"
import type { Kit } from "../model/state.js"
import { appendLedger, randomUuid } from "../model/state.js"
import type { Routes, ServerKit } from "../server/kit.js"
import { respond } from "../server/kit.js"
import type * as FZ from "../types.js"
import type { Ended } from "./runs.js"

/** The endpoints of this area, as the ledger names them. */
export const endpoints = {
  callbackJwks: "GET /.well-known/jwks.json"
} as const

/** The `kid` of the fake's callback signing key. */
export const callbackKeyId = "fake-zapier-callbacks-1"

/** The control methods of this area. */
export interface CallbacksControl {
  /**
   * Plans the next callback deliveries: each run created with a `callback_url` (that ends) takes the next plan,
   * in creation order; the last one stays for every later run. `deliver` (the default), `drop` (never sent), `duplicate` (sent twice).
   */
  readonly planCallbacks: (...plans: ReadonlyArray<FZ.CallbackPlan>) => Effect.Effect<void>
  /** The public key set of the callback signatures (what `GET /.well-known/jwks.json` serves). */
  readonly callbackJwks: Effect.Effect<{ readonly keys: ReadonlyArray<Jose.JWK> }>
  /**
   * Signs a callback token as the fake does, with extra or overriding claims (for a receiver's own tests);
   * `iat` is the model's now plus `iatOffset` seconds, `exp` is `iat` plus `ttl` seconds (default 300).
   */
  readonly signCallback: (
    claims?: Readonly<Record<string, unknown>>,
    options?: { readonly iatOffset?: number | undefined; readonly ttl?: number | undefined }
  ) => Effect.Effect<string>
}

/** What the runs area hands over when a run with a callback URL is created (`at`: epoch millis, model clock). */
export type Scheduled = Ended

interface CallbackKey {
  readonly privateKey: Jose.CryptoKey
  readonly publicJwk: Jose.JWK
}

const generateCallbackKey = async (): Promise<CallbackKey> => {
  const pair = await Jose.generateKeyPair("RS256", { extractable: true })
  const publicJwk: Jose.JWK = {
    ...(await Jose.exportJWK(pair.publicKey)),
    kid: callbackKeyId,
    alg: "RS256",
    use: "sig"
  }
  return { privateKey: pair.privateKey, publicJwk }
}

/** This process's callback key, made by the first model that needs it (see the module's note). */
let processKey: Promise<CallbackKey> | undefined

const callbackKey: Effect.Effect<CallbackKey> = Effect.promise(() => {
  if (processKey === undefined) {
    const made = generateCallbackKey()
    processKey = made
    // A failed generation is not kept: the next model tries again.
    made.catch(() => {
      if (processKey === made) processKey = undefined
    })
  }
  return processKey
})

const hex = (bytes: ArrayBuffer) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("")

/** The model side: the signing key, the deliveries (forked in the model's scope), the plan and the controls. */
export const model = (kit: Kit): Effect.Effect<ReturnType<typeof build>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { privateKey, publicJwk } = yield* callbackKey
    const fibers = yield* FiberSet.make()
    return build(kit, privateKey, publicJwk, fibers)
  })

const build = (kit: Kit, privateKey: Jose.CryptoKey, publicJwk: Jose.JWK, fibers: FiberSet.FiberSet) => {
  const { now, state, clock } = kit
  const settings = kit.settings.callbacks
  const plans = Ref.unsafeMake<ReadonlyArray<FZ.CallbackPlan>>([])

  const sign = (claims: Readonly<Record<string, unknown>> = {}, iatOffset = 0, ttl = 300) =>
    Effect.flatMap(now, (t) => {
      const iat = Math.floor(t / 1000) + iatOffset
      return Effect.flatMap(randomUuid, (jti) =>
        Effect.promise(() =>
          new Jose.SignJWT({ iss: "https://zapier.com", jti, ...claims, iat, exp: iat + ttl })
            .setProtectedHeader({ alg: "RS256", kid: callbackKeyId, typ: "JWT" })
            .sign(privateKey)
        )
      )
    })

  const record = (entry: FZ.CallbackEntry) => Ref.update(state, (s) => appendLedger(s, "callbacks", entry))

  const nextPlan = Ref.modify(plans, (queue): [FZ.CallbackPlan, ReadonlyArray<FZ.CallbackPlan>] =>
    queue.length === 0 ? ["deliver", queue] : [queue[0]!, queue.length > 1 ? queue.slice(1) : queue]
  )

  /** One delivery: up to `attempts` POSTs, retried on a 5xx or a network error. */
  const deliver = (run: Scheduled, body: string, delivery: number) =>
    Effect.gen(function* () {
      for (let attempt = 1; attempt <= settings.attempts; attempt++) {
        const digest = yield* Effect.promise(() =>
          globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(body))
        )
        const jwt = yield* sign(settings.claims === "bound" ? { run_id: run.runId, body_sha256: hex(digest) } : {})
        const status = yield* Effect.tryPromise({
          try: (signal) =>
            fetch(run.url, {
              method: "POST",
              headers: { "content-type": "application/json", "zapier-callback-signature": jwt },
              body,
              signal
            }).then(async (response) => {
              await response.arrayBuffer().catch(() => undefined)
              return response.status
            }),
          catch: () => "network" as const
        }).pipe(Effect.timeoutFail({ duration: settings.timeout, onTimeout: () => "network" as const }), Effect.merge)
        yield* record({ at: yield* now, runId: run.runId, delivery, attempt, status })
        const retry = status === "network" || status >= 500
        if (!retry) return
        if (attempt < settings.attempts) {
          yield* clock.sleep(Duration.times(settings.retryDelay, 2 ** (attempt - 1)))
        }
      }
    })

  // The plan is taken in creation order (when the run is created), the delivery happens when it ends.
  const schedule = (run: Scheduled) =>
    Effect.flatMap(nextPlan, (plan) => deliverWhenEnded(run, plan).pipe(FiberSet.run(fibers), Effect.asVoid))

  const deliverWhenEnded = (run: Scheduled, plan: FZ.CallbackPlan) =>
    Effect.gen(function* () {
      const body = JSON.stringify({
        data: {
          type: "run",
          id: run.runId,
          status: run.status,
          results: run.results,
          errors: run.errors.map((e) => ({
            code: e.code,
            title: e.title,
            detail: e.detail ?? "",
            ...(e.delaySeconds !== undefined ? { delay: e.delaySeconds } : {}),
            meta: null
          }))
        }
      })
      const wait = run.at - (yield* now)
      if (wait > 0) yield* clock.sleep(Duration.millis(wait))
      if (plan === "drop") {
        return yield* record({ at: yield* now, runId: run.runId, delivery: 1, attempt: 0, status: "dropped" })
      }
      yield* deliver(run, body, 1)
      if (plan === "duplicate") yield* deliver(run, body, 2)
    })

  const control: CallbacksControl = {
    planCallbacks: (...next) => Ref.set(plans, next),
    callbackJwks: Effect.succeed({ keys: [publicJwk] }),
    signCallback: (claims, options) => sign(claims, options?.iatOffset ?? 0, options?.ttl ?? 300)
  }

  return { schedule, control, jwks: { keys: [publicJwk] } }
}

/** The model side of this area. */
export type Model = Effect.Effect.Success<ReturnType<typeof model>>

/** The key set route. */
export const routes = (server: ServerKit, m: Model): Routes => [
  HttpRouter.makeRoute(
    "GET",
    "/.well-known/jwks.json",
    server.handle(endpoints.callbackJwks)(
      Effect.succeed(respond(HttpServerResponse.unsafeJson(m.jwks, { headers: { "cache-control": "max-age=300" } })))
    )
  )
]
