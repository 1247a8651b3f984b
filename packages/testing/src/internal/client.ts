/**
 * What the in-memory services of every area share: a client's token handling (one cached access token per user,
 * one refresh-and-retry on a 401), and a request through the model's gate (fault plan, rate limit) and ledger,
 * mapped to core's errors as a client over HTTP would map the answer. Core's `TokenExchange` is served from here.
 *
 * @internal
 */
import { Domain, Errors, TokenExchange } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as SynchronizedRef from "effect/SynchronizedRef"
import { endpoints as Endpoint } from "./areas/tokens.js"
import type { OAuthFailure, RawAnswer } from "./model/failures.js"
import { ApiFailure, oauthFromApi } from "./model/failures.js"
import type { Kernel } from "./model/kernel.js"
import { connectResource, dateTime, userKey } from "./model/state.js"

/** Why one attempt failed, before it is mapped to core's errors. */
type Failure =
  | { readonly _tag: "Api"; readonly failure: ApiFailure }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Malformed" }

/** The in-memory layer has no wire: a `Respond` fault counts by its status (a 2xx as a body that does not decode). */
const fromRaw = (answer: RawAnswer, now: number): Failure => {
  if (answer.status >= 200 && answer.status < 300) return { _tag: "Malformed" }
  const header = answer.headers["retry-after"] ?? answer.headers["Retry-After"]
  const date = header !== undefined && !/^\d+$/.test(header.trim()) ? Date.parse(header) : Number.NaN
  const seconds =
    header === undefined
      ? undefined
      : Number.isNaN(date)
        ? Number(header.trim())
        : Math.max(0, Math.ceil((date - now) / 1000))
  return {
    _tag: "Api",
    failure: ApiFailure.fromStatus(
      answer.status,
      undefined,
      undefined,
      seconds !== undefined && Number.isFinite(seconds) ? Duration.seconds(seconds) : undefined
    )
  }
}

/**
 * A status the live client counts as Zapier being unavailable: a 5xx, or 408 (the server gave up waiting for the
 * request). A safe request may be repeated; a create may or may not have run.
 */
const unavailable = (status: number): boolean => status >= 500 || status === 408

const toError = (
  endpoint: string,
  failure: Failure,
  create: boolean
): Errors.RequestError | Errors.RunOutcomeUnknown => {
  if (failure._tag === "Drop") {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: "the connection was reset before an answer arrived" })
      : new Errors.ZapierUnavailable({ endpoint, reason: "the connection was reset" })
  }
  if (failure._tag === "Malformed") {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: "the answer was not JSON", status: 200 })
      : new Errors.InvalidResponse({ endpoint, reason: "the body is not JSON", status: 200 })
  }
  const f = failure.failure
  if (f.status === 429) {
    return new Errors.RateLimited({ endpoint, retryAfter: Duration.seconds(f.retryAfterSeconds ?? 60) })
  }
  if (f.status === 401 || f.status === 403) {
    return new Errors.Unauthorized({ endpoint, status: f.status, detail: f.detail })
  }
  if (f.status === 404) return new Errors.NotFound({ endpoint, resource: f.resource ?? f.detail })
  if (unavailable(f.status)) {
    return create
      ? new Errors.RunOutcomeUnknown({ endpoint, reason: `HTTP ${f.status} ${f.title}`, status: f.status })
      : new Errors.ZapierUnavailable({ endpoint, reason: f.title, status: f.status })
  }
  return new Errors.BadRequest({
    endpoint,
    errors: [Errors.ApiError.make({ code: f.code, title: f.title, detail: f.detail, status: f.status })]
  })
}

const exchangeError = (failure: Failure | OAuthFailure): TokenExchange.ExchangeError => {
  const endpoint = Endpoint.token
  if ("error" in failure) {
    if (failure.status === 429) {
      return new Errors.RateLimited({ endpoint, retryAfter: Duration.seconds(failure.retryAfterSeconds ?? 60) })
    }
    if (unavailable(failure.status)) {
      return new Errors.ZapierUnavailable({ endpoint, reason: failure.error, status: failure.status })
    }
    return new Errors.TokenExchangeFailed({
      error: failure.error,
      description: failure.description,
      status: failure.status
    })
  }
  if (failure._tag === "Api") return exchangeError(oauthFromApi(failure.failure))
  return failure._tag === "Drop"
    ? new Errors.ZapierUnavailable({ endpoint, reason: "the connection was reset" })
    : new Errors.InvalidResponse({ endpoint, reason: "the body is not JSON", status: 200 })
}

/**
 * Runs one request through the model's gate (fault plan, rate limit), the body, and the ledger.
 * Fails with the raw failure; the caller maps it.
 */
const through = <A, E>(
  model: Kernel,
  info: { readonly method: string; readonly endpoint: string; readonly path: string; readonly user: Domain.EndUser },
  body: Effect.Effect<A, E>,
  statusOf: (e: E) => number
): Effect.Effect<A, E | Failure> =>
  Effect.gen(function* () {
    const gate = yield* model.gate(info)
    const record = (status: number) =>
      model.record({ method: info.method, endpoint: info.endpoint, path: info.path, status, user: info.user })
    if (gate._tag === "Drop") {
      yield* record(0)
      return yield* Effect.fail<Failure>({ _tag: "Drop" })
    }
    if (gate._tag === "Fail") {
      yield* record(gate.failure.status)
      return yield* Effect.fail<Failure>({ _tag: "Api", failure: gate.failure })
    }
    if (gate._tag === "Raw") {
      yield* record(gate.answer.status)
      return yield* Effect.fail<Failure>(fromRaw(gate.answer, yield* model.now))
    }
    if (gate.delay !== undefined) yield* model.clock.sleep(gate.delay)
    const result = yield* Effect.either(body)
    const after = gate.after
    if (after !== undefined) {
      yield* record(
        after._tag === "Fail"
          ? after.failure.status
          : after._tag === "Drop"
            ? 0
            : after._tag === "Raw"
              ? after.answer.status
              : 200
      )
      return yield* Effect.fail<Failure>(
        after._tag === "Fail"
          ? { _tag: "Api", failure: after.failure }
          : after._tag === "Raw"
            ? fromRaw(after.answer, yield* model.now)
            : after
      )
    }
    if (result._tag === "Left") {
      yield* record(statusOf(result.left))
      return yield* Effect.fail(result.left)
    }
    yield* record(200)
    return result.right
  })

/** Builds the four services over a model. */
/** The client side shared by the in-memory services, over the kernel. */
export const make = (model: Kernel) =>
  Effect.gen(function* () {
    const cache = yield* SynchronizedRef.make(HashMap.empty<string, Domain.AccessToken>())
    const ttl = model.settings.accessTokenTtlSeconds
    const refreshAheadMillis = Math.min(300, ttl / 2) * 1000

    const exchange = (user: Domain.EndUser) =>
      Effect.gen(function* () {
        const issued = yield* through(
          model,
          { method: "POST", endpoint: Endpoint.token, path: "/oauth/token", user },
          model.exchangeAccess(user, undefined),
          () => 400
        )
        return Domain.AccessToken.make({
          value: Redacted.make(issued.token),
          expiresAt: dateTime(issued.issuedAt + issued.expiresIn * 1000),
          scope: issued.scope
        })
      }).pipe(Effect.mapError(exchangeError))

    const accessToken = Effect.fn("TokenExchange.accessToken")(function* (user: Domain.EndUser) {
      const key = userKey(user)
      return yield* SynchronizedRef.modifyEffect(cache, (tokens) =>
        Effect.gen(function* () {
          const cached = HashMap.get(tokens, key)
          const t = yield* model.now
          if (Option.isSome(cached) && cached.value.expiresAt.epochMillis - refreshAheadMillis > t) {
            return [cached.value, tokens] as const
          }
          const fresh = yield* exchange(user)
          return [fresh, HashMap.set(tokens, key, fresh)] as const
        })
      )
    })

    const invalidate = Effect.fn("TokenExchange.invalidate")(function* (
      user: Domain.EndUser,
      failed?: Domain.AccessToken
    ) {
      const key = userKey(user)
      yield* SynchronizedRef.update(cache, (tokens) => {
        const cached = HashMap.get(tokens, key)
        if (Option.isNone(cached)) return tokens
        if (failed !== undefined && Redacted.value(cached.value.value) !== Redacted.value(failed.value)) return tokens
        return HashMap.remove(tokens, key)
      })
    })

    /** One exchange of the access token for a connect token; a refused subject token is refreshed once. */
    const connectToken = Effect.fn("TokenExchange.connectToken")(function* (user: Domain.EndUser, app: Domain.AppId) {
      const resource = connectResource(model.settings.connectUrl, app)
      const once = (token: Domain.AccessToken) =>
        through(
          model,
          { method: "POST", endpoint: Endpoint.token, path: "/oauth/token", user },
          model.exchangeConnect(Redacted.value(token.value), resource, "connection:write"),
          (e: OAuthFailure) => e.status
        ).pipe(Effect.mapError(exchangeError))
      const first = yield* accessToken(user)
      const issued = yield* once(first).pipe(
        Effect.catchIf(
          (e) => e._tag === "TokenExchangeFailed" && e.error === "invalid_grant",
          () => Effect.zipRight(invalidate(user, first), Effect.flatMap(accessToken(user), once))
        )
      )
      return Domain.ConnectToken.make({
        value: Redacted.make(issued.token),
        expiresAt: dateTime(issued.issuedAt + issued.expiresIn * 1000),
        app
      })
    })

    /** An API request as the user: the cached token, and one refresh-and-retry on a 401. */
    const request = <A>(
      info: { readonly method: string; readonly endpoint: string; readonly path: string },
      user: Domain.EndUser,
      body: Effect.Effect<A, ApiFailure>,
      create = false
    ): Effect.Effect<A, Errors.RequestError | Errors.RunOutcomeUnknown> => {
      const attempt = (token: Domain.AccessToken) =>
        Effect.gen(function* () {
          const owner = yield* Effect.either(model.authenticate(Redacted.value(token.value)))
          if (owner._tag === "Left") {
            yield* model.record({ ...info, status: 401, user })
            return yield* Effect.fail<Failure>({ _tag: "Api", failure: owner.left })
          }
          return yield* through(
            model,
            { ...info, user: owner.right },
            Effect.mapError(body, (failure): Failure => ({ _tag: "Api", failure })),
            (f) => (f._tag === "Api" ? f.failure.status : 0)
          )
        })
      const mapped = (token: Domain.AccessToken) =>
        Effect.mapError(attempt(token), (f) => toError(info.endpoint, f, create))
      return Effect.gen(function* () {
        const token = yield* accessToken(user)
        return yield* mapped(token).pipe(
          Effect.catchIf(
            (e) => e._tag === "Unauthorized" && e.status === 401,
            () => Effect.zipRight(invalidate(user, token), Effect.flatMap(accessToken(user), mapped))
          )
        )
      })
    }

    const tokens = TokenExchange.TokenExchange.of({ accessToken, connectToken, invalidate })

    return { model, tokens, connectToken, request }
  })

/** The client side shared by the in-memory services. */
export type ClientKit = Effect.Effect.Success<ReturnType<typeof make>>
