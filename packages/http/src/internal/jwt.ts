/**
 * The partner JWT: signed with the key imported once at layer build, claims from the end user, times from
 * Effect's Clock, a random `jti`, `kid` in the header.
 *
 * What does not change between two JWTs of one layer is made once, by {@link signer}: the encoded protected header
 * (`alg`, `kid`, `typ`), the signing parameters of the algorithm, and the key's `node:crypto` handle. A JWT then
 * costs one `JSON.stringify` of the claims, two base64url encodings and the signature itself, computed at once
 * with `node:crypto`'s `sign` on the same key (the `KeyObject` behind the imported `CryptoKey`): no promise, no
 * round trip through the thread pool and back to the event loop, which cost more CPU than the ES256 signature
 * itself. The compact form is what `jose.SignJWT` produces for the same header and claims (ECDSA signatures in
 * the JWS form, r ‖ s). An RS256 signature blocks the event loop for its few hundred microseconds; it is made
 * once per exchange, and the exchange is cached. A key `node:crypto` cannot take (not one of its `CryptoKey`s)
 * is signed with WebCrypto as before.
 * @internal
 */
import * as NodeCrypto from "node:crypto"
import type { EndUser } from "@effect-zapier/core/Domain"
import { TokenExchangeFailed } from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Algorithm } from "./options.js"
import type { Settings } from "./settings.js"

const utf8 = new TextEncoder()

const base64url = (text: string): string => Buffer.from(text, "utf8").toString("base64url")

/** The WebCrypto parameters of `sign` for a JWS algorithm (RSA keys carry their hash from the import). */
const signParams = (algorithm: Algorithm): AlgorithmIdentifier | EcdsaParams =>
  algorithm.startsWith("ES") ? { name: "ECDSA", hash: `SHA-${algorithm.slice(2)}` } : { name: "RSASSA-PKCS1-v1_5" }

/**
 * `(input) => signature` with `node:crypto` for the layer's key, or `undefined` when the key is not one
 * `node:crypto` knows (then WebCrypto signs).
 */
const nodeSigner = (settings: Settings): ((input: string) => Buffer) | undefined => {
  let keyObject: NodeCrypto.KeyObject
  try {
    keyObject = NodeCrypto.KeyObject.from(settings.key)
  } catch {
    return undefined
  }
  const hash = `sha${settings.algorithm.slice(2)}`
  const key: NodeCrypto.SignKeyObjectInput = settings.algorithm.startsWith("ES")
    ? { key: keyObject, dsaEncoding: "ieee-p1363" }
    : { key: keyObject }
  return (input) => NodeCrypto.sign(hash, Buffer.from(input, "utf8"), key)
}

/**
 * The partner JWT signer of one layer: `(user) => ` the signed JWT for `user`, Redacted; the signing error never
 * quotes the key.
 * @internal
 */
export const signer = (
  settings: Settings
): ((user: EndUser) => Effect.Effect<Redacted.Redacted<string>, TokenExchangeFailed>) => {
  const header = base64url(JSON.stringify({ alg: settings.algorithm, kid: settings.keyId, typ: "JWT" }))
  const failed = () =>
    new TokenExchangeFailed({
      error: "signing_failed",
      description: `the partner JWT could not be signed with the configured ${settings.algorithm} key`
    })
  const input = (user: EndUser, now: number): string => {
    const iat = Math.floor(now / 1000)
    const claims = JSON.stringify({
      [settings.userClaim]: user.userId,
      [settings.tenantClaim]: user.tenantId,
      iss: settings.issuer,
      aud: settings.audience,
      iat,
      nbf: iat,
      exp: iat + settings.jwtLifetimeSeconds,
      jti: globalThis.crypto.randomUUID()
    })
    return `${header}.${base64url(claims)}`
  }
  const signNow = nodeSigner(settings)
  if (signNow !== undefined) {
    return (user) =>
      Effect.clockWith((clock) =>
        Effect.try({
          try: () => {
            const signing = input(user, clock.unsafeCurrentTimeMillis())
            return Redacted.make(`${signing}.${signNow(signing).toString("base64url")}`)
          },
          catch: failed
        })
      )
  }
  const params = signParams(settings.algorithm)
  const key = settings.key
  return (user) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const signing = input(user, now)
      return Effect.tryPromise({
        try: () =>
          globalThis.crypto.subtle
            .sign(params, key, utf8.encode(signing))
            .then((signature) => Redacted.make(`${signing}.${Buffer.from(signature).toString("base64url")}`)),
        catch: failed
      })
    })
}
