/**
 * Step 1 of the flow: per-user access tokens (and single-use connect tokens) from Zapier's token exchange.
 * Implementations cache access tokens per end user, share one exchange among concurrent callers and refresh
 * ahead of expiry; connect tokens are never cached.
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
 *   const token = yield* tokens.accessToken(user) // token.value is Redacted
 * })
 * ```
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { AccessToken, AppId, ConnectToken, EndUser } from "./Domain.js"
import type { InvalidResponse, RateLimited, TokenExchangeFailed, ZapierUnavailable } from "./Errors.js"

/**
 * What a token exchange can fail with.
 * @since 0.1.0
 */
export type ExchangeError = TokenExchangeFailed | RateLimited | ZapierUnavailable | InvalidResponse

/** @since 0.1.0 */
export interface Service {
  /** A valid access token for this end user (cached; at most one exchange in flight per user). */
  readonly accessToken: (user: EndUser) => Effect.Effect<AccessToken, ExchangeError>
  /** A fresh, single-use connect token for Connect UI of `app` (never cached). */
  readonly connectToken: (user: EndUser, app: AppId) => Effect.Effect<ConnectToken, ExchangeError>
  /**
   * Forget the user's cached access token. With `failed`, only when the cache still holds that token, so a
   * burst of 401s on one token causes at most one re-exchange.
   */
  readonly invalidate: (user: EndUser, failed?: AccessToken) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenExchange extends Context.Tag("@effect-zapier/core/TokenExchange")<TokenExchange, Service>() {}
