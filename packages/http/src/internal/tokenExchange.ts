/**
 * `TokenExchange` over Zapier's OAuth endpoint (RFC 8693 token exchange, form body with the client credentials).
 *
 * - Access tokens: a partner JWT (signed per attempt with the key imported once) is exchanged for a per-user
 *   access token. Tokens are cached per end user and scope; concurrent callers share one exchange; a token is
 *   refreshed in the background once less than `min(300 s, 50 % of expires_in)` is left, and callers keep getting
 *   the still-valid token meanwhile; expiry is measured from when the exchange request started; an exchange is
 *   never cancelled by one caller's interruption. A token is trusted for its `expires_in` (at most a day); an
 *   answer whose `expires_in` is zero or negative is refused as `InvalidResponse` and nothing is cached.
 * - Connect tokens: the access token is exchanged for a single-use connect token whose `resource` is the Connect
 *   UI URL of the app; never cached.
 * - Closing the layer interrupts the exchanges in flight and hands the interruption to their callers. After that
 *   no exchange is started: a call that needs one is interrupted at once (a still-valid cached token is still
 *   handed out, but no refresh is started).
 *
 * Build it with `ZapierHttp.layer` (which shares one HttpClient, settings and retry budget among the services).
 *
 * @example
 * ```ts
 * import { Domain, TokenExchange } from "@effect-zapier/core"
 * import { Effect } from "effect"
 *
 * const user = Domain.EndUser.make({ userId: "u-42", tenantId: "acme" })
 *
 * const program = Effect.gen(function* () {
 *   const tokens = yield* TokenExchange.TokenExchange
 *   const token = yield* tokens.accessToken(user) // cached, single-flight
 * })
 * ```
 * @internal
 */

import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { AccessToken as AccessTokenType, AppId, EndUser } from "@effect-zapier/core/Domain"
import { AccessToken, ConnectToken } from "@effect-zapier/core/Domain"
import type { TokenExchangeFailed } from "@effect-zapier/core/Errors"
import * as Metrics from "@effect-zapier/core/Metrics"
import * as TokenExchange from "@effect-zapier/core/TokenExchange"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Wire from "../Wire.js"
import type { Env } from "./env.js"
import { send } from "./env.js"
import { decodeBody, forToken, Local } from "./errors.js"
import { signer } from "./jwt.js"
import { defaults } from "./settings.js"

interface Cached {
  readonly token: AccessTokenType
  /** From here on a background refresh is started. */
  readonly refreshAt: number
  /** From here on the token is no longer handed out: callers wait for a new one. */
  readonly staleAt: number
}

/**
 * One exchange in flight, run by a fiber of its own (so no caller's interruption cancels it). Its callers wait on a
 * plain list of callbacks rather than a `Deferred` (which costs ~1 KB per exchange); a caller interrupted while it
 * waits takes its callback off the list.
 */
interface Flight {
  waiters: Array<(exit: Exit.Exit<AccessTokenType, TokenExchange.ExchangeError>) => void>
  exit: Exit.Exit<AccessTokenType, TokenExchange.ExchangeError> | undefined
  fiber: Fiber.RuntimeFiber<void> | undefined
}

const newFlight = (): Flight => ({ waiters: [], exit: undefined, fiber: undefined })

/** Waits for the flight's outcome; an interrupted waiter leaves the others and the exchange alone. */
const awaitFlight = (flight: Flight): Effect.Effect<AccessTokenType, TokenExchange.ExchangeError> =>
  flight.exit ??
  Effect.async<AccessTokenType, TokenExchange.ExchangeError>((resume) => {
    if (flight.exit !== undefined) return resume(flight.exit)
    const waiter = (exit: Exit.Exit<AccessTokenType, TokenExchange.ExchangeError>) => resume(exit)
    flight.waiters.push(waiter)
    return Effect.sync(() => {
      const i = flight.waiters.indexOf(waiter)
      if (i >= 0) flight.waiters.splice(i, 1)
    })
  })

interface Slot {
  readonly cached: Cached | undefined
  readonly inflight: Flight | undefined
  /** After a failed background refresh, the next one waits until then (callers still get the valid token). */
  readonly holdUntil: number
}

/** The token endpoint's answer, decoded by one compiled decoder. */
const decodeToken = decodeBody(Wire.TokenResponse)

/** Characters the form encoding leaves as they are (all a JWT is made of). */
const formSafe = /^[A-Za-z0-9*._-]*$/

/** `value` form-encoded as `URLSearchParams` encodes it; a JWT as it is (nothing in it needs encoding). */
const formValue = (value: string): string =>
  formSafe.test(value) ? value : new URLSearchParams({ v: value }).toString().slice(2)

/** How long a failed background refresh waits before the next try. */
const refreshRetryDelay = 10_000

/**
 * When to refresh and when to stop serving a token issued at `startedAt` for `lifetime` ms.
 * @since 0.1.0
 */
const refreshPlan = (
  startedAt: number,
  lifetime: number
): { readonly expiresAt: number; readonly refreshAt: number; readonly staleAt: number } => {
  const expiresAt = startedAt + lifetime
  return {
    expiresAt,
    refreshAt: expiresAt - Math.min(300_000, lifetime / 2),
    staleAt: expiresAt - Math.min(30_000, lifetime / 10)
  }
}

const sameToken = (a: AccessTokenType, b: AccessTokenType): boolean =>
  a === b || Redacted.value(a.value) === Redacted.value(b.value)

/**
 * The longest a token is trusted, whatever its `expires_in` says: an absurd lifetime (years; a value past the end
 * of dates) is refreshed daily instead of breaking the date arithmetic.
 */
const maxLifetime = 24 * 3_600_000

/**
 * The lifetime to plan with. `expires_in` was decoded as positive (zero or negative is refused as
 * `InvalidResponse` by `Wire.TokenResponse`, never cached); absent, the documented default applies.
 */
const lifetimeOf = (expiresIn: number | null | undefined, fallback: Duration.Duration): number =>
  typeof expiresIn === "number" && expiresIn > 0 ? Math.min(expiresIn * 1000, maxLifetime) : Duration.toMillis(fallback)

/**
 * The token exchange of one layer, and the untraced cache read the layer's own requests use.
 * @internal
 */
export interface Tokens extends TokenExchange.Service {
  /**
   * The user's cached token while it needs nothing (fresh, no refresh due): one clock read and one map lookup, no
   * span, fiber or `Deferred`. Otherwise the same as `accessToken` (which then starts the exchange or refresh).
   */
  readonly current: (user: EndUser) => Effect.Effect<AccessTokenType, TokenExchange.ExchangeError>
}

/**
 * The token exchange of one layer.
 * @since 0.1.0
 * @category constructors
 */
export const make = (env: Env): Effect.Effect<Tokens, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { settings } = env
    const slots = new Map<string, Slot>()
    let pruneAbove = 1024
    const sign = signer(settings)

    /**
     * The token endpoint's request without its body, made once; a body is the form with its constant fields
     * encoded once, the subject token encoded per exchange (the same bytes and headers as `bodyUrlParams` gives).
     */
    const tokenRequest = HttpClientRequest.post(settings.tokenUrl).pipe(HttpClientRequest.acceptJson)
    const formHead = new URLSearchParams({
      grant_type: settings.grantType,
      client_id: settings.clientId,
      client_secret: Redacted.value(settings.clientSecret)
    }).toString()
    const formOf = (tail: Readonly<Record<string, string>>) => {
      const formTail = new URLSearchParams(tail).toString()
      return (subjectToken: string): string => `${formHead}&subject_token=${formValue(subjectToken)}&${formTail}`
    }
    const accessForm = formOf({
      subject_token_type: settings.jwtTokenType,
      requested_token_type: settings.accessTokenType,
      scope: settings.scope
    })

    /**
     * One exchange at the token endpoint; resolves with the token and when its request started. `subject` is
     * made per attempt (a retry signs a fresh JWT), after the clock read that dates the attempt.
     */
    const exchange = (
      subject: Effect.Effect<Redacted.Redacted<string>, TokenExchangeFailed>,
      form: (subjectToken: string) => string
    ) =>
      Effect.suspend(() => {
        let startedAt = 0
        const secrets = [Redacted.value(settings.clientSecret)]
        const build = Effect.clockWith((clock) => {
          startedAt = clock.unsafeCurrentTimeMillis()
          return Effect.mapBoth(subject, {
            onFailure: (e) => new Local({ reason: e.description ?? e.error, code: e.error }),
            onSuccess: (token) => {
              const value = Redacted.value(token)
              secrets.push(value)
              return HttpClientRequest.bodyText(tokenRequest, form(value), "application/x-www-form-urlencoded")
            }
          })
        })
        return send(env, "token", settings.tokenEndpoint, build, (raw) => decodeToken(raw.status, raw.body)).pipe(
          Effect.mapBoth({
            onFailure: (e) =>
              forToken(e.error, {
                endpoint: settings.tokenEndpoint,
                kind: "token",
                retryAfter: e.retryAfter,
                rateLimitCooldown: settings.rateLimitCooldown,
                secrets
              }),
            onSuccess: (response) => ({ response, startedAt })
          })
        )
      })

    const trackAccess = Metrics.trackExchange("access")
    const trackConnect = Metrics.trackExchange("connect")

    const exchangeAccess = (user: EndUser) =>
      trackAccess(
        Effect.map(exchange(sign(user), accessForm), ({ response, startedAt }): Cached => {
          const plan = refreshPlan(startedAt, lifetimeOf(response.expires_in, defaults.accessTokenLifetime))
          return {
            // Not validated again: each field is of its schema's type (decoded from the answer, or the settings').
            token: AccessToken.make(
              {
                value: response.access_token,
                expiresAt: DateTime.unsafeMake(plan.expiresAt),
                scope: response.scope ?? settings.scope
              },
              true
            ),
            refreshAt: plan.refreshAt,
            staleAt: plan.staleAt
          }
        })
      )

    const keyOf = (user: EndUser) => `${user.key}\u0000${settings.scope}`

    const prune = (now: number) => {
      if (slots.size <= pruneAbove) return
      for (const [key, slot] of slots) {
        if (slot.inflight === undefined && (slot.cached === undefined || slot.cached.staleAt <= now)) slots.delete(key)
      }
      pruneAbove = Math.max(1024, slots.size * 2)
    }

    /** Set when the layer closes: from then on no exchange is started (a caller that needs one is interrupted). */
    let closed = false

    // Closing the layer interrupts the exchanges in flight; their onExit then hands the interruption to every
    // waiter, so none is left hanging. A call made after that starts none: it would run in a daemon fiber that no
    // finalizer interrupts any more, over the closed layer's client.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const fibers: Array<Fiber.RuntimeFiber<void>> = []
        for (const slot of slots.values()) if (slot.inflight?.fiber) fibers.push(slot.inflight.fiber)
        return Fiber.interruptAll(fibers)
      })
    )

    /**
     * Runs one exchange for `key` in a fiber of its own (a daemon the layer's finalizer interrupts), so no
     * caller's interruption cancels it.
     */
    const start = (user: EndUser, key: string, flight: Flight, background: boolean) =>
      exchangeAccess(user).pipe(
        // onExit also runs when the layer's finalizer interrupts the exchange, so no waiter is left hanging.
        Effect.onExit((exit) =>
          Effect.clockWith((clock) => {
            const slot = slots.get(key)
            if (slot?.inflight === flight) {
              const now = clock.unsafeCurrentTimeMillis()
              slots.set(
                key,
                Exit.isSuccess(exit)
                  ? { cached: exit.value, inflight: undefined, holdUntil: 0 }
                  : { cached: slot.cached, inflight: undefined, holdUntil: background ? now + refreshRetryDelay : 0 }
              )
              prune(now)
            }
            const outcome = Exit.map(exit, (cached) => cached.token)
            const waiters = flight.waiters
            flight.exit = outcome
            flight.waiters = []
            flight.fiber = undefined
            for (const waiter of waiters) waiter(outcome)
            return Effect.void
          })
        ),
        // The outcome is delivered to the waiters; the fiber itself never fails.
        Effect.ignore,
        Effect.forkDaemon,
        Effect.map((fiber) => {
          if (flight.exit === undefined) flight.fiber = fiber
          return fiber
        })
      )

    // The plan is made in one synchronous step when the effect runs: no other fiber can interleave between
    // reading the slot and marking it in flight.
    const accessToken = Effect.fn("TokenExchange.accessToken")((user: EndUser) =>
      Effect.clockWith((clock): Effect.Effect<AccessTokenType, TokenExchange.ExchangeError> => {
        const now = clock.unsafeCurrentTimeMillis()
        const key = keyOf(user)
        const slot = slots.get(key)
        const cached = slot?.cached
        if (slot && cached && now < cached.staleAt) {
          if (now < cached.refreshAt || slot.inflight !== undefined || now < slot.holdUntil || closed) {
            return Effect.succeed(cached.token)
          }
          const refresh = newFlight()
          slots.set(key, { ...slot, inflight: refresh })
          return Effect.as(start(user, key, refresh, true), cached.token)
        }
        if (slot?.inflight !== undefined) return awaitFlight(slot.inflight)
        if (closed) return Effect.interrupt
        const flight = newFlight()
        slots.set(key, { cached: undefined, inflight: flight, holdUntil: 0 })
        return Effect.zipRight(
          start(user, key, flight, false),
          Effect.suspend(() => awaitFlight(flight))
        )
      })
    )

    const current = (user: EndUser): Effect.Effect<AccessTokenType, TokenExchange.ExchangeError> =>
      Effect.clockWith((clock) => {
        const cached = slots.get(keyOf(user))?.cached
        return cached !== undefined && clock.unsafeCurrentTimeMillis() < cached.refreshAt
          ? Effect.succeed(cached.token)
          : accessToken(user)
      })

    const invalidate = Effect.fn("TokenExchange.invalidate")(function* (user: EndUser, failed?: AccessTokenType) {
      yield* Effect.sync(() => {
        const key = keyOf(user)
        const slot = slots.get(key)
        if (slot?.cached === undefined) return
        if (failed === undefined || sameToken(slot.cached.token, failed)) {
          slots.set(key, { ...slot, cached: undefined })
        }
      })
    })

    const exchangeConnect = (access: AccessTokenType, app: AppId) =>
      trackConnect(
        Effect.map(
          exchange(
            Effect.succeed(access.value),
            formOf({
              subject_token_type: settings.accessTokenType,
              requested_token_type: settings.connectTokenType,
              scope: settings.connectScope,
              resource: `${settings.connectUrl}/to/${encodeURIComponent(app)}`
            })
          ),
          ({ response, startedAt }) =>
            ConnectToken.make({
              value: response.access_token,
              expiresAt: DateTime.unsafeMake(
                startedAt + lifetimeOf(response.expires_in, defaults.connectTokenLifetime)
              ),
              app
            })
        )
      )

    const connectToken = Effect.fn("TokenExchange.connectToken")(function* (user: EndUser, app: AppId) {
      yield* Effect.annotateCurrentSpan("zapier.app", app)
      const access = yield* accessToken(user)
      return yield* exchangeConnect(access, app).pipe(
        Effect.catchTag("TokenExchangeFailed", (e) =>
          // The cached access token was refused as the subject (revoked?): replace it once.
          (e.status === 400 || e.status === 401) && (e.error === "invalid_grant" || e.error === "invalid_token")
            ? invalidate(user, access).pipe(
                Effect.zipRight(accessToken(user)),
                Effect.flatMap((fresh) => exchangeConnect(fresh, app))
              )
            : Effect.fail(e)
        )
      )
    })

    return { ...TokenExchange.TokenExchange.of({ accessToken, connectToken, invalidate }), current }
  })
