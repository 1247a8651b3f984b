/**
 * The partner JWT: signed with the key imported once at layer build, claims from the end user, times from
 * Effect's Clock, a random `jti`, `kid` in the header.
 *
 * What does not change between two JWTs of one layer is made once, by {@link signer}: the encoded protected header
 * (`alg`, `kid`, `typ`), the WebCrypto signing parameters of the algorithm, and the constant claims. A JWT then
 * costs one `JSON.stringify` of the claims, two base64url encodings and the signature itself (WebCrypto, the same
 * primitive jose uses; the compact form is what `jose.SignJWT` produces for the same header and claims).
 * @internal
 */
import type { EndUser } from "@effect-zapier/core/Domain"
import { TokenExchangeFailed } from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import type { Algorithm } from "./options.js"
import type { Settings } from "./settings.js"

const utf8 = new TextEncoder()

/** The WebCrypto parameters of `sign` for a JWS algorithm (RSA keys carry their hash from the import). */
const signParams = (algorithm: Algorithm): AlgorithmIdentifier | EcdsaParams =>
  algorithm.startsWith("ES") ? { name: "ECDSA", hash: `SHA-${algorithm.slice(2)}` } : { name: "RSASSA-PKCS1-v1_5" }

/**
 * The partner JWT signer of one layer: `(user) => ` the signed JWT for `user`, Redacted; the signing error never
 * quotes the key.
 * @internal
 */
export const signer = (
  settings: Settings
): ((user: EndUser) => Effect.Effect<Redacted.Redacted<string>, TokenExchangeFailed>) => {
  const header = Jose.base64url.encode(JSON.stringify({ alg: settings.algorithm, kid: settings.keyId, typ: "JWT" }))
  const params = signParams(settings.algorithm)
  const key = settings.key
  const failed = () =>
    new TokenExchangeFailed({
      error: "signing_failed",
      description: `the partner JWT could not be signed with the configured ${settings.algorithm} key`
    })
  return (user) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
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
      const input = `${header}.${Jose.base64url.encode(claims)}`
      return Effect.tryPromise({
        try: () =>
          globalThis.crypto.subtle
            .sign(params, key, utf8.encode(input))
            .then((signature) => Redacted.make(`${input}.${Jose.base64url.encode(new Uint8Array(signature))}`)),
        catch: failed
      })
    })
}
