/**
 * Verification of `Zapier-Callback-Signature`: an RS256 JWT checked against Zapier's JWKS, which is fetched
 * through the app's `HttpClient` (never jose's own fetch), cached, and fetched again on an unknown `kid` at most
 * once per refetch interval.
 *
 * What Zapier documents about the token (confirmed): RS256, verifiable with the keys at
 * `https://zapier.com/.well-known/jwks.json`, `iat` and `exp` set, valid about 5 minutes. What binds it to one
 * body or one run is not documented (inferred): a `run_id` claim, if present, must equal the body's run id, and a
 * `body_sha256` claim, if present, must be the SHA-256 of the raw body (hex or base64url). Without them the
 * binding is the routing token of the callback URL, known only to Zapier and the partner (checked by the
 * receiver against the run-event bus).
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Jose from "jose"
import { noRedirects } from "./env.js"

/** Why a callback was not accepted: the HTTP status to answer and a message that quotes nothing received. */
export interface Refusal {
  readonly _tag: "Refusal"
  readonly status: 400 | 401 | 405 | 413 | 415 | 503
  readonly code: string
  readonly message: string
  readonly retryAfter?: number | undefined
}

export const refuse = (status: Refusal["status"], code: string, message: string, retryAfter?: number): Refusal => ({
  _tag: "Refusal",
  status,
  code,
  message,
  ...(retryAfter !== undefined ? { retryAfter } : {})
})

export interface VerifierSettings {
  readonly jwksUrl: string
  /** Tolerance on `iat`/`exp`, in seconds. */
  readonly clockSkewSeconds: number
  /** The oldest `iat` accepted, in seconds (Zapier's tokens live about 5 minutes). */
  readonly maxTokenAgeSeconds: number
  /** The least time between two fetches caused by an unknown `kid`. */
  readonly refetchInterval: Duration.Duration
  /** A key set older than this is fetched again before use. */
  readonly maxKeySetAge: Duration.Duration
  readonly requestTimeout: Duration.Duration
}

export interface Verifier {
  readonly verify: (jwt: Redacted.Redacted<string>) => Effect.Effect<Jose.JWTPayload, Refusal>
  /** How many times the key set was fetched (for tests and metrics). */
  readonly fetches: Effect.Effect<number>
}

/** The JWKS document: `keys` of objects; members are checked by jose when a key is used. */
const JwksDocument = Schema.Struct({
  keys: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })).pipe(Schema.maxItems(100))
})
const decodeJwks = Schema.decodeUnknownEither(Schema.parseJson(JwksDocument))

const maxJwksBytes = 64 * 1024

type KeySet = ReturnType<typeof Jose.createLocalJWKSet>

const unavailable = refuse(
  503,
  "keys_unavailable",
  "Zapier's signing keys could not be fetched; the callback should be delivered again"
)

export const makeVerifier = (client: HttpClient.HttpClient, settings: VerifierSettings): Effect.Effect<Verifier> =>
  Effect.gen(function* () {
    const lock = yield* Effect.makeSemaphore(1)
    let current: { readonly keys: KeySet; readonly fetchedAt: number } | undefined
    let lastAttempt = Number.NEGATIVE_INFINITY
    let fetches = 0

    const fetchKeys = Effect.gen(function* () {
      fetches++
      lastAttempt = yield* Clock.currentTimeMillis
      const text = yield* client.execute(HttpClientRequest.get(settings.jwksUrl, { acceptJson: true })).pipe(
        Effect.flatMap((response): Effect.Effect<string, unknown> => {
          if (response.status < 200 || response.status >= 300) return Effect.fail("status")
          const declared = Number(response.headers["content-length"])
          if (Number.isFinite(declared) && declared > maxJwksBytes) return Effect.fail("size")
          return response.stream.pipe(
            Stream.runFoldEffect("", (acc, chunk) => {
              const next = acc + new TextDecoder().decode(chunk)
              return next.length > maxJwksBytes ? Effect.fail("size") : Effect.succeed(next)
            })
          )
        }),
        Effect.scoped,
        // A key set from wherever a redirect points is not Zapier's: the 3xx is the answer (503, fetched again later).
        noRedirects,
        Effect.timeout(settings.requestTimeout),
        Effect.mapError(() => unavailable)
      )
      const document = decodeJwks(text)
      if (Either.isLeft(document)) return yield* Effect.fail(unavailable)
      const keys = yield* Effect.try({
        try: () => Jose.createLocalJWKSet({ keys: document.right.keys as Array<Jose.JWK> }),
        catch: () => unavailable
      })
      const fetchedAt = yield* Clock.currentTimeMillis
      current = { keys, fetchedAt }
      return keys
    })

    /** The cached key set, fetched when missing or too old (one fetch at a time). */
    const keySet = lock.withPermits(1)(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (current !== undefined && now - current.fetchedAt < Duration.toMillis(settings.maxKeySetAge)) {
          return current.keys
        }
        return yield* fetchKeys
      })
    )

    /** A fresh key set after an unknown `kid`, unless one was fetched within the refetch interval. */
    const refetch = (seen: KeySet) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          if (current !== undefined && current.keys !== seen) return current.keys // refreshed meanwhile
          const now = yield* Clock.currentTimeMillis
          const wait = lastAttempt + Duration.toMillis(settings.refetchInterval) - now
          if (wait > 0) {
            return yield* Effect.fail(
              refuse(
                503,
                "unknown_key",
                "the signature's key is not in Zapier's key set as last fetched; the key set is fetched again shortly",
                Math.ceil(wait / 1000)
              )
            )
          }
          return yield* fetchKeys
        })
      )

    const check = (jwt: string, keys: KeySet, now: number) =>
      Effect.tryPromise({
        try: () =>
          Jose.jwtVerify(jwt, keys, {
            algorithms: ["RS256"],
            clockTolerance: settings.clockSkewSeconds,
            currentDate: new Date(now),
            maxTokenAge: settings.maxTokenAgeSeconds,
            requiredClaims: ["iat", "exp"]
          }),
        catch: (error) => error
      })

    const toRefusal = (error: unknown): Refusal => {
      if (error instanceof Jose.errors.JWTExpired) {
        return refuse(401, "expired", "the signature has expired (exp or iat too far in the past)")
      }
      if (error instanceof Jose.errors.JWTClaimValidationFailed) {
        const claim = ["iat", "exp", "nbf"].includes(error.claim) ? error.claim : "a claim"
        return refuse(401, "invalid_claims", `the signature's ${claim} is not acceptable (e.g. issued in the future)`)
      }
      if (error instanceof Jose.errors.JWKSNoMatchingKey) {
        return refuse(401, "unknown_key", "the signature's key is not in Zapier's key set")
      }
      if (error instanceof Jose.errors.JWSSignatureVerificationFailed) {
        return refuse(401, "bad_signature", "the signature does not verify with Zapier's key")
      }
      if (error instanceof Jose.errors.JOSEAlgNotAllowed) {
        return refuse(401, "bad_algorithm", "the signature's algorithm is not RS256")
      }
      return refuse(401, "invalid_signature", "the signature is not a valid JWT signed by Zapier")
    }

    const verify = (token: Redacted.Redacted<string>): Effect.Effect<Jose.JWTPayload, Refusal> =>
      Effect.gen(function* () {
        const jwt = Redacted.value(token)
        const header = Either.try(() => Jose.decodeProtectedHeader(jwt))
        if (Either.isLeft(header)) {
          return yield* Effect.fail(refuse(401, "invalid_signature", "the signature is not a JWT"))
        }
        // RS256 only: "none", HMAC (a public key used as a secret) and every other algorithm are refused first.
        if (header.right.alg !== "RS256") {
          return yield* Effect.fail(refuse(401, "bad_algorithm", "the signature's algorithm is not RS256"))
        }
        const keys = yield* keySet
        const now = yield* Clock.currentTimeMillis
        const first = yield* Effect.either(check(jwt, keys, now))
        if (Either.isRight(first)) return first.right.payload
        if (!(first.left instanceof Jose.errors.JWKSNoMatchingKey)) return yield* Effect.fail(toRefusal(first.left))
        const fresh = yield* refetch(keys)
        const second = yield* Effect.either(check(jwt, fresh, yield* Clock.currentTimeMillis))
        if (Either.isRight(second)) return second.right.payload
        return yield* Effect.fail(toRefusal(second.left))
      })

    return { verify, fetches: Effect.sync(() => fetches) }
  })
