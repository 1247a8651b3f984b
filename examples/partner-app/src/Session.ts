/**
 * Who the end user is: a session cookie signed with HMAC-SHA256.
 *
 * **This is where your real authentication plugs in.** The demo's login form lets anyone claim any user of any
 * tenant; in your app the user and tenant come from your own session (your login, SSO, an upstream gateway's
 * header). Replace `Sessions.sign` at login and `Authentication` (which turns a request into `CurrentUser`): the
 * rest of the backend only ever sees `CurrentUser`, an `EndUser` of `@effect-zapier/core`.
 *
 * The cookie is `base64url(JSON {u, t, exp}).base64url(HMAC(secret, payload))`, `HttpOnly`, `SameSite=Lax`
 * (`Secure` when served over HTTPS). The secret is `Redacted` from config to the HMAC and never logged.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Domain } from "@effect-zapier/core"
import { Clock, Context, Duration, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { Authentication, NotLoggedIn } from "./Api.js"

/** The signed payload. */
const Payload = Schema.Struct({
  u: Domain.NonEmptyTrimmed,
  t: Domain.NonEmptyTrimmed,
  /** Expiry, epoch millis. */
  exp: Schema.Number
})
const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(Payload))

export interface Options {
  /** The HMAC key. At least 32 bytes of randomness. */
  readonly secret: Redacted.Redacted<string>
  /** How long a session lasts. */
  readonly lifetime: Duration.Duration
}

export interface Service {
  /** The cookie value for this user (at login). */
  readonly sign: (user: Domain.EndUser) => Effect.Effect<string>
  /** The user of a cookie value, if it is ours, intact and not expired. */
  readonly verify: (value: string) => Effect.Effect<Option.Option<Domain.EndUser>>
  readonly lifetime: Duration.Duration
}

export class Sessions extends Context.Tag("partner-app/Sessions")<Sessions, Service>() {}

const mac = (secret: Redacted.Redacted<string>, payload: string): Buffer =>
  createHmac("sha256", Redacted.value(secret)).update(payload).digest()

export const make = (options: Options): Service => ({
  lifetime: options.lifetime,
  sign: (user) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const payload = Buffer.from(
        JSON.stringify({ u: user.userId, t: user.tenantId, exp: now + Duration.toMillis(options.lifetime) })
      ).toString("base64url")
      return `${payload}.${mac(options.secret, payload).toString("base64url")}`
    }),
  verify: (value) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const [payload, signature, ...rest] = value.split(".")
      if (payload === undefined || signature === undefined || rest.length > 0) return Option.none()
      const expected = mac(options.secret, payload)
      const given = Buffer.from(signature, "base64url")
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Option.none()
      const decoded = decodePayload(Buffer.from(payload, "base64url").toString("utf8"))
      if (Either.isLeft(decoded) || decoded.right.exp <= now) return Option.none()
      return Option.some(Domain.EndUser.make({ userId: decoded.right.u, tenantId: decoded.right.t }))
    })
})

export const layer = (options: Options): Layer.Layer<Sessions> => Layer.succeed(Sessions, make(options))

/** `CurrentUser` from the session cookie, or 401. */
export const layerAuthentication: Layer.Layer<Authentication, never, Sessions> = Layer.effect(
  Authentication,
  Effect.map(Sessions, (sessions) =>
    Authentication.of({
      session: (cookie) =>
        Effect.flatMap(sessions.verify(Redacted.value(cookie)), (user) =>
          Option.match(user, {
            onNone: () =>
              Effect.fail(new NotLoggedIn({ message: "Log in first: the session is missing or has expired." })),
            onSome: Effect.succeed
          })
        )
    })
  )
)
