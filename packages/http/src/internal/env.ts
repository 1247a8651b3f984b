/**
 * What every service of one layer shares: the settings, the HttpClient, the retry budget, the rate limiter; and
 * the single helper that sends a request under the retry policy of its kind.
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { ReadSent } from "@effect-zapier/core/ActionRuns"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as RateLimiter from "../RateLimiter.js"
import type { AttemptError, BadBody, Kind } from "./errors.js"
import { retryAfterHint, Throttled } from "./errors.js"
import type { Budget, Exhausted } from "./retry.js"
import { withRetries } from "./retry.js"
import type { Settings } from "./settings.js"
import type { Raw } from "./transport.js"
import { attempt, withoutRedirects } from "./transport.js"

/** @internal */
export interface Env {
  readonly settings: Settings
  readonly client: HttpClient.HttpClient
  readonly budget: Budget
  /** Meters the API requests (not the token endpoint); `undefined` when rate limiting is off. */
  readonly limiter?: RateLimiter.Service | undefined
}

/**
 * No redirect is ever followed, whatever the request: a redirected token request would carry the client secret
 * elsewhere, a redirected API request the user's access token, and its answer would be trusted although it came
 * from another origin (which pagination, for one, refuses). undici's dispatcher and node:http do not follow
 * redirects; fetch does by default, so a fetch-based client is told not to (`redirect: "manual"`: the 3xx itself
 * is the answer). A `FetchHttpClient.RequestInit` in the caller's context is kept, with `redirect` overridden;
 * one given only to the client's layer is not visible here and is replaced for these requests.
 */
export const noRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.contextWithEffect((context: Context.Context<never>) => Effect.provide(effect, withoutRedirects(context)))

/**
 * One attempt of an API request under the shared rate limiter: a slot is taken before every attempt (the wait is
 * not part of the attempt's timeout), and a 429 pauses the whole budget for its `Retry-After` (the
 * `rateLimitCooldown` when there is none, at most `maxRetryAfter`), so everyone sharing it holds back.
 */
const metered = <A>(
  limiter: RateLimiter.Service,
  settings: Settings,
  once: Effect.Effect<A, AttemptError>,
  bucket: string | undefined
): Effect.Effect<A, AttemptError> =>
  limiter.take(bucket).pipe(
    Effect.catchTag("RateLimited", (e) => Effect.fail(new Throttled({ retryAfter: e.retryAfter }))),
    Effect.zipRight(once),
    Effect.tapError((error) =>
      error._tag === "Status" && error.status === 429
        ? Effect.flatMap(Clock.currentTimeMillis, (now) =>
            limiter.pause(
              Duration.min(retryAfterHint(error.headers, now) ?? settings.rateLimitCooldown, settings.maxRetryAfter),
              bucket
            )
          )
        : Effect.void
    )
  )

/** What `ActionRuns.ReadSent` holds when no caller provides one (it does nothing). */
const unreported = Context.get(Context.empty(), ReadSent)

/**
 * `sent`, after telling the caller's `ActionRuns.ReadSent` that the attempt goes out now: the report is read from
 * the context in one step and the clock only when a caller provided one (`Effect.zipWith` of the reference and
 * `Clock.currentTimeMillis`, then `zipRight`, took ~16 run-loop steps per attempt, most of them for the default).
 */
const reportingSent = <A, E>(sent: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.contextWithEffect((context: Context.Context<never>) => {
    const report = Context.get(context, ReadSent)
    if (report === unreported) return sent
    return Effect.clockWith((clock) => {
      report(clock.unsafeCurrentTimeMillis())
      return sent
    })
  })

/**
 * Builds (per attempt) and sends a request under the retry policy of `kind`. API requests (`safe`, `create`)
 * take a slot of the rate limiter before each attempt; token exchanges do not (Zapier's published limits are the
 * API's, and a refresh must not queue behind polls). A 3xx is never followed, with any HttpClient: it is an error
 * of the request's kind (`TokenExchangeFailed` "redirect" for the token endpoint, `InvalidResponse` for a GET,
 * `RunOutcomeUnknown` for the create-run POST, since whether a run exists behind a redirect cannot be known).
 * @internal
 */
export const send = <A>(
  env: Env,
  kind: Kind,
  endpoint: string,
  /** The request, or how to build it (per attempt) when building can fail. */
  build: HttpClientRequest.HttpClientRequest | Effect.Effect<HttpClientRequest.HttpClientRequest, AttemptError>,
  decode: (raw: Raw) => Either.Either<A, BadBody>,
  options?: SendOptions
): Effect.Effect<A, Exhausted> => {
  const sendOnce = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<A, AttemptError> => {
    // The attempt's own fiber runs with fetch's redirects off (see noRedirects), set once there.
    const sent = attempt(env.client, env.settings, request, decode, options?.timeout)
    // Reported when the attempt goes out: after the rate limiter's slot and any retry's delay.
    const once = options?.reportSent === true ? reportingSent(sent) : sent
    if (kind === "token") return once
    return env.limiter === undefined ? once : metered(env.limiter, env.settings, once, options?.bucket)
  }
  // A ready request is sent as it is by every attempt (no flatMap per attempt to build it).
  return withRetries(
    kind,
    endpoint,
    env.settings,
    env.budget,
    Effect.isEffect(build) ? Effect.flatMap(build, sendOnce) : sendOnce(build)
  )
}

/** What one kind of request changes about sending. @internal */
export interface SendOptions {
  /** The attempt's timeout (default `requestTimeout`). */
  readonly timeout?: Duration.Duration | undefined
  /** The rate limiter's bucket (default the limiter's own key). */
  readonly bucket?: string | undefined
  /**
   * Report each attempt to the caller's `ActionRuns.ReadSent` as it goes out (a plain run read; never a held one,
   * which Zapier answers when the run ends).
   */
  readonly reportSent?: boolean | undefined
}
