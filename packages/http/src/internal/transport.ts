/**
 * One attempt of one request: send it, read the body (capped), all under one timeout, and classify the outcome
 * as a response or an {@link AttemptError}.
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type { AttemptError } from "./errors.js"
import { BadBody, fromPlatform, Status, Timeout } from "./errors.js"
import type { Settings } from "./settings.js"
import { timeoutFail } from "./timeout.js"

/** A complete answer. @internal */
export interface Raw {
  readonly status: number
  readonly headers: Headers.Headers
  readonly body: string
}

class TooLarge {
  readonly _tag = "TooLarge"
}

/**
 * Reads the body as UTF-8, or `undefined` when it is larger than `max` bytes (reading stops there). A body whose
 * `Content-Length` is declared and within `max` is read in one go (the HTTP parser reads no byte past the declared
 * length, so the cap holds): the common case costs one read instead of a stream fold. Without a declared length
 * (chunked), the stream is folded and stops at `max`.
 */
const readCapped = (
  response: HttpClientResponse.HttpClientResponse,
  max: number
): Effect.Effect<string | undefined, HttpClientError.ResponseError> => {
  const header = response.headers["content-length"]
  const declared = header === undefined ? Number.NaN : Number(header)
  if (Number.isFinite(declared)) {
    if (declared > max) return Effect.succeed(undefined)
    // An `EmptyBody` failure is read as "" by `attempt`'s one handler of outcomes (no catchAll per read).
    return response.text
  }
  return response.stream.pipe(
    Stream.runFoldEffect({ parts: [] as Array<Uint8Array>, size: 0 }, (acc, chunk) => {
      const size = acc.size + chunk.byteLength
      if (size > max) return Effect.fail(new TooLarge())
      acc.parts.push(chunk)
      return Effect.succeed({ parts: acc.parts, size })
    }),
    Effect.map(({ parts, size }) => {
      const bytes = new Uint8Array(size)
      let offset = 0
      for (const part of parts) {
        bytes.set(part, offset)
        offset += part.byteLength
      }
      return new TextDecoder().decode(bytes) as string | undefined
    }),
    Effect.catchAll((e) =>
      e._tag === "TooLarge" ? Effect.succeed(undefined) : e.reason === "EmptyBody" ? Effect.succeed("") : Effect.fail(e)
    )
  )
}

/**
 * `context` with fetch told not to follow redirects (`redirect: "manual"`), keeping the rest of a
 * `FetchHttpClient.RequestInit` it holds. Why no redirect is followed: `env.noRedirects`, which applies this to a
 * whole effect.
 * @internal
 */
export const withoutRedirects = (context: Context.Context<never>): Context.Context<never> =>
  Context.add(context, FetchHttpClient.RequestInit, {
    ...Context.getOrElse(context, FetchHttpClient.RequestInit, () => ({})),
    redirect: "manual"
  })

/**
 * Sends `request` once with `client`, reading the whole (capped) body within `timeout`, never following a
 * redirect (the attempt's fiber runs with {@link withoutRedirects}). A 2xx is handed to `decode`; any other status
 * fails with `Status`.
 * @internal
 */
export const attempt = <A>(
  client: HttpClient.HttpClient,
  settings: Settings,
  request: HttpClientRequest.HttpClientRequest,
  decode: (raw: Raw) => Either.Either<A, BadBody>,
  /** The attempt's timeout when not `settings.requestTimeout` (a held long-poll read adds its wait). */
  timeout: Duration.Duration = settings.requestTimeout
): Effect.Effect<A, AttemptError> => {
  const answer = (
    response: HttpClientResponse.HttpClientResponse,
    body: string | undefined
  ): Either.Either<A, AttemptError> => {
    const status = response.status
    if (status < 200 || status >= 300) {
      return Either.left(new Status({ status, headers: response.headers, body: body ?? "" }))
    }
    if (body === undefined) {
      return Either.left(
        new BadBody({
          status,
          reason: `the response body is larger than ${settings.maxResponseBytes} bytes`,
          transient: false
        })
      )
    }
    return decode({ status, headers: response.headers, body })
  }
  const read = Effect.flatMap(client.execute(request), (response) =>
    Effect.map(readCapped(response, settings.maxResponseBytes), (body) => ({ response, body }))
  )
  // One handler for every outcome, after the timeout: the answer, an empty body read as "", the timeout, or a
  // platform error mapped onto an AttemptError (a mapError and a catchAll inside the attempt took a step each).
  return Effect.matchEffect(
    timeoutFail(read, timeout, () => new Timeout({ after: timeout }), withoutRedirects),
    {
      onFailure: (e): Effect.Effect<A, AttemptError> =>
        e._tag === "Timeout"
          ? Effect.fail(e)
          : e._tag === "ResponseError" && e.reason === "EmptyBody"
            ? answer(e.response, "")
            : Effect.fail(fromPlatform(e, timeout)),
      onSuccess: ({ response, body }): Effect.Effect<A, AttemptError> => answer(response, body)
    }
  )
}
