/**
 * Authorized requests to Zapier's API for one end user: the user's access token as Bearer, the retry policy of
 * the request's kind, and one refresh-and-retry on a 401 (invalidating only the token that failed), then the
 * mapping onto core's errors. Also the pagination walk shared by the list endpoints.
 * @internal
 */

import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { AccessToken, EndUser } from "@effect-zapier/core/Domain"
import type * as Errors from "@effect-zapier/core/Errors"
import { InvalidResponse } from "@effect-zapier/core/Errors"
import type * as TokenExchange from "@effect-zapier/core/TokenExchange"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type { Env, SendOptions } from "./env.js"
import { send } from "./env.js"
import type { AttemptError, BadBody, Context } from "./errors.js"
import { forCreate, forLease, forSafe, isUnauthenticated400 } from "./errors.js"
import type { Exhausted } from "./retry.js"
import type { Tokens } from "./tokenExchange.js"
import type { Raw } from "./transport.js"

/** One API request. @internal */
export interface ApiRequest<A> {
  /** `METHOD /path` without the query, for errors and logs. */
  readonly endpoint: string
  /** Named in a NotFound. */
  readonly resource?: string | undefined
  /** For RunOutcomeUnknown. */
  readonly run?: Context["run"]
  /**
   * The request without its Authorization header: ready, or how to build it (once per attempt) when building can
   * fail (a body to encode).
   */
  readonly request:
    | HttpClientRequest.HttpClientRequest
    | Effect.Effect<HttpClientRequest.HttpClientRequest, AttemptError>
  readonly decode: (raw: Raw) => Either.Either<A, BadBody>
  /**
   * Also treat a 400 whose error code is `unauthenticated` as a refused token (the Trigger Inbox routes answer an
   * invalid or expired Bearer token that way): refresh it once and retry.
   */
  readonly unauthenticated400?: boolean | undefined
  /**
   * Non-2xx statuses that are answers of this request rather than failures (e.g. a 409 that means "exists with a
   * different subscription"): their body goes to `decode`, after the retries (these statuses are never retried).
   */
  readonly answers?: ReadonlyArray<number> | undefined
  /** The attempt's timeout and rate-limit bucket, when not the defaults (a long-poll read). */
  readonly send?: SendOptions | undefined
}

/** @internal */
export interface Api {
  readonly env: Env
  /** A safe request (a GET): retried on transient failures. */
  readonly execute: <A>(user: EndUser, request: ApiRequest<A>) => Effect.Effect<A, Errors.RequestError>
  /** The create-run POST: replayed only when it provably did not reach Zapier. */
  readonly create: <A>(
    user: EndUser,
    request: ApiRequest<A>
  ) => Effect.Effect<A, Errors.RequestError | Errors.RunOutcomeUnknown>
  /** A Trigger Inbox lease: replayed only when it provably did not reach Zapier; a lost answer is unavailable. */
  readonly lease: <A>(user: EndUser, request: ApiRequest<A>) => Effect.Effect<A, Errors.RequestError>
}

/** @internal */
export const make = (env: Env, tokens: Tokens): Api => {
  const run = <A, E>(
    kind: "safe" | "create" | "lease",
    map: (error: AttemptError, ctx: Context) => E,
    user: EndUser,
    spec: ApiRequest<A>
  ): Effect.Effect<A, E | TokenExchange.ExchangeError> => {
    // Accept and Authorization in one copy of the request (acceptJson then bearerToken would make two).
    const authorized = (token: AccessToken) => (request: HttpClientRequest.HttpClientRequest) =>
      HttpClientRequest.setHeaders(request, {
        accept: "application/json",
        authorization: `Bearer ${Redacted.value(token.value)}`
      })
    const once = (token: AccessToken): Effect.Effect<A, Exhausted> =>
      send(
        env,
        kind,
        spec.endpoint,
        Effect.isEffect(spec.request) ? Effect.map(spec.request, authorized(token)) : authorized(token)(spec.request),
        spec.decode,
        spec.send
      )
    /** The retries' last failure as the request's error (made only when it fails). */
    const mapped = (e: Exhausted, token: AccessToken): E =>
      map(e.error, {
        endpoint: spec.endpoint,
        kind,
        resource: spec.resource,
        run: spec.run,
        retryAfter: e.retryAfter,
        rateLimitCooldown: env.settings.rateLimitCooldown,
        secrets: [Redacted.value(token.value)]
      })
    const answers = spec.answers
    /** A non-2xx status the request treats as an answer, decoded (only for a request that has such statuses). */
    const orAnswer =
      answers === undefined || answers.length === 0
        ? (effect: ReturnType<typeof once>) => effect
        : (effect: ReturnType<typeof once>) =>
            Effect.catchAll(effect, (e) => {
              const failure = e.error
              const answer =
                failure._tag === "Status" && answers.includes(failure.status)
                  ? spec.decode({ status: failure.status, headers: failure.headers, body: failure.body })
                  : undefined
              return answer !== undefined && Either.isRight(answer) ? Effect.succeed(answer.right) : Effect.fail(e)
            })
    return Effect.flatMap(tokens.current(user), (token) =>
      Effect.catchAll(orAnswer(once(token)), (first) => {
        const failure = first.error
        const refused =
          (failure._tag === "Status" && failure.status === 401) ||
          (spec.unauthenticated400 === true && isUnauthenticated400(failure))
        if (!refused) return Effect.fail(mapped(first, token))
        // 401: the token was refused before anything was processed. Replace that token (only if it is still the
        // cached one, so a burst of 401s costs one exchange) and try once more; a second 401 is Unauthorized.
        return tokens.invalidate(user, token).pipe(
          Effect.zipRight(tokens.accessToken(user)),
          Effect.flatMap((fresh) => orAnswer(once(fresh)).pipe(Effect.mapError((e) => mapped(e, fresh))))
        )
      })
    )
  }
  return {
    env,
    execute: (user, spec) => run("safe", forSafe, user, spec),
    create: (user, spec) => run("create", forCreate, user, spec),
    lease: (user, spec) => run("lease", forLease, user, spec)
  }
}

/** One decoded page: its items and where the next page is. @internal */
export interface Page<I> {
  readonly items: ReadonlyArray<I>
  readonly next: string | null | undefined
  readonly count: number | null | undefined
}

const maxPages = 1000

/**
 * Walks every page of a list endpoint: follows `links.next` when Zapier gives one (only within `apiUrl`'s
 * origin, so the token never goes elsewhere), else `offset`/`limit` while `meta.count` says there is more.
 * @internal
 */
export const paginate = <I>(
  api: Api,
  user: EndUser,
  options: {
    readonly endpoint: string
    readonly path: string
    readonly query: Readonly<Record<string, string>>
    readonly resource?: string | undefined
    readonly decode: (raw: Raw) => Either.Either<Page<I>, BadBody>
  }
): Effect.Effect<ReadonlyArray<I>, Errors.RequestError> =>
  Effect.gen(function* () {
    const { apiUrl, pageSize } = api.env.settings
    const origin = new URL(apiUrl).origin
    const items: Array<I> = []
    const seen = new Set<string>()
    let target: URL | { readonly offset: number } = { offset: 0 }
    for (let pages = 0; ; pages++) {
      if (pages >= maxPages) {
        return yield* new InvalidResponse({ endpoint: options.endpoint, reason: `more than ${maxPages} pages` })
      }
      const current = target
      const request =
        current instanceof URL
          ? HttpClientRequest.get(current)
          : HttpClientRequest.get(`${apiUrl}${options.path}`, {
              urlParams: { ...options.query, limit: String(pageSize), offset: String(current.offset) }
            })
      const page = yield* api.execute(user, {
        endpoint: options.endpoint,
        resource: options.resource,
        request: Effect.succeed(request),
        decode: options.decode
      })
      items.push(...page.items)
      if (page.items.length === 0) break
      if (typeof page.next === "string" && page.next.length > 0) {
        let next: URL
        try {
          next = new URL(page.next, apiUrl)
        } catch {
          return yield* new InvalidResponse({ endpoint: options.endpoint, reason: "links.next is not a URL" })
        }
        if (next.origin !== origin) {
          return yield* new InvalidResponse({
            endpoint: options.endpoint,
            reason: "links.next points outside the API URL; it was not followed"
          })
        }
        if (seen.has(next.href)) break
        seen.add(next.href)
        target = next
        continue
      }
      // No next link: offset/limit, while meta.count says there is more.
      if (typeof page.count === "number" && items.length < page.count) {
        target = { offset: items.length }
        continue
      }
      break
    }
    return items
  })
