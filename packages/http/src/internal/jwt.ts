/**
 * The partner JWT: signed with the key imported once at layer build, claims from the end user, times from
 * Effect's Clock, a random `jti`, `kid` in the header.
 * @internal
 */
import type { EndUser } from "@effect-zapier/core/Domain"
import { TokenExchangeFailed } from "@effect-zapier/core/Errors"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import type { Settings } from "./settings.js"

/**
 * Signs the partner JWT for `user`. The result is Redacted; the signing error never quotes the key.
 * @internal
 */
export const sign = (
  settings: Settings,
  user: EndUser
): Effect.Effect<Redacted.Redacted<string>, TokenExchangeFailed> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const iat = Math.floor(now / 1000)
    const payload: Jose.JWTPayload = {
      [settings.userClaim]: user.userId,
      [settings.tenantClaim]: user.tenantId,
      iss: settings.issuer,
      aud: settings.audience,
      iat,
      nbf: iat,
      exp: iat + settings.jwtLifetimeSeconds,
      jti: globalThis.crypto.randomUUID()
    }
    return Effect.tryPromise({
      try: () =>
        new Jose.SignJWT(payload)
          .setProtectedHeader({ alg: settings.algorithm, kid: settings.keyId, typ: "JWT" })
          .sign(settings.key),
      catch: () =>
        new TokenExchangeFailed({
          error: "signing_failed",
          description: `the partner JWT could not be signed with the configured ${settings.algorithm} key`
        })
    }).pipe(Effect.map(Redacted.make))
  })
