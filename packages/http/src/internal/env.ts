/**
 * What every service of one layer shares: the settings, the HttpClient, the retry budget; and the single helper
 * that sends a request under the retry policy of its kind.
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { AttemptError, BadBody, Kind } from "./errors.js"
import type { Budget, Exhausted } from "./retry.js"
import { withRetries } from "./retry.js"
import type { Settings } from "./settings.js"
import type { Raw } from "./transport.js"
import { attempt } from "./transport.js"

/** @internal */
export interface Env {
  readonly settings: Settings
  readonly client: HttpClient.HttpClient
  readonly budget: Budget
}

/**
 * The token endpoint's redirects are never followed (a redirected token request would carry the client secret
 * elsewhere). undici's dispatcher and node:http do not follow redirects; fetch does by default, so a fetch-based
 * client is told not to (a `FetchHttpClient.RequestInit` in the caller's context is kept, with `redirect`
 * overridden; one given only to the client's layer is not visible here and is replaced for these requests).
 */
const noRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(FetchHttpClient.RequestInit), (init) =>
    Effect.provideService(effect, FetchHttpClient.RequestInit, {
      ...Option.getOrElse(init, () => ({})),
      redirect: "manual"
    })
  )

/**
 * Builds (per attempt) and sends a request under the retry policy of `kind`. A 3xx is never followed by this
 * package: it is an error of the request's kind.
 * @internal
 */
export const send = <A>(
  env: Env,
  kind: Kind,
  endpoint: string,
  build: Effect.Effect<HttpClientRequest.HttpClientRequest, AttemptError>,
  decode: (raw: Raw) => Either.Either<A, BadBody>
): Effect.Effect<A, Exhausted> =>
  withRetries(
    kind,
    endpoint,
    env.settings,
    env.budget,
    Effect.flatMap(build, (request) => {
      const once = attempt(env.client, env.settings, request, decode)
      return kind === "token" ? noRedirects(once) : once
    })
  )
