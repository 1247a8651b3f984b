/**
 * The options of the live layers, as `ZapierHttp` exports them: the types only (validation and defaults are in
 * `settings.ts`).
 * @internal
 */
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

/**
 * The JWT signing algorithms Zapier accepts.
 * @since 0.1.0
 */
export type Algorithm = "ES256" | "ES384" | "ES512" | "RS256" | "RS384" | "RS512"

/**
 * The create-run body shape: `flat` is the White Label guides' `{action, authentication, input}`; `data` is the
 * OpenAPI's `{data: {action, authentication, inputs}}`.
 * @since 0.1.0
 */
export type RunBodyShape = "flat" | "data"

/**
 * How a run's state is read: `poll` (`GET /v2/action-runs/{id}/`, on the polling schedule) or `long-poll` (the
 * Actions API's `GET /actions/v2/runs/{id}?wait_seconds=N`, which Zapier holds until the run ends or N seconds
 * pass; 202 = read again).
 * @since 0.1.0
 */
export type RunReads = "poll" | "long-poll"

/**
 * The client-side rate limit of the API requests (see {@link Options.rateLimit}); every field has a default.
 * @since 0.1.0
 * @category options
 */
export interface RateLimitOptions {
  /** Requests per window; default 60 (Zapier's published limit per IP). */
  readonly limit?: number | undefined
  /** Zapier's sliding window; default 1 minute (counted over 61 s: the margin is added). */
  readonly window?: Duration.DurationInput | undefined
  /**
   * Added to the window when counting, for the time between taking a slot and Zapier counting the request;
   * default `max(1 s, 1 % of window)` (`RateLimiter.defaultMargin`).
   */
  readonly margin?: Duration.DurationInput | undefined
  /** The longest a request waits for a slot before failing with `RateLimited`; default 2 minutes. */
  readonly maxWait?: Duration.DurationInput | undefined
}

/**
 * Everything the live layers need. Only the partner credentials are required; every other option has the
 * default shown (environment variable in brackets, for `layerFromEnv`).
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** The OAuth client id Zapier issued to the partner [ZAPIER_CLIENT_ID]. */
  readonly clientId: string
  /** The OAuth client secret [ZAPIER_CLIENT_SECRET]. */
  readonly clientSecret: Redacted.Redacted<string>
  /** The partner's private signing key: a PKCS#8 PEM or a private JWK as JSON [ZAPIER_SIGNING_KEY]. */
  readonly signingKey: Redacted.Redacted<string>
  /** The `kid` of the key in the partner's registered JWKS [ZAPIER_KEY_ID]. */
  readonly keyId: string
  /** The issuer (`iss`) registered with Zapier [ZAPIER_JWT_ISSUER]. */
  readonly issuer: string
  /** Default `ES256` [ZAPIER_JWT_ALGORITHM]. */
  readonly algorithm?: Algorithm | undefined
  /** Default `connect.zapier.com` [ZAPIER_JWT_AUDIENCE]. */
  readonly audience?: string | undefined
  /** The claim carrying the end user's id; default `sub` [ZAPIER_USER_CLAIM]. */
  readonly userClaim?: string | undefined
  /** The claim carrying the tenant's id; default `org_id` [ZAPIER_TENANT_CLAIM]. */
  readonly tenantClaim?: string | undefined
  /** Lifetime of the partner JWT; default and maximum 5 minutes [ZAPIER_JWT_LIFETIME]. */
  readonly jwtLifetime?: Duration.DurationInput | undefined
  /** Default `https://api.zapier.com` [ZAPIER_API_URL]. */
  readonly apiUrl?: string | undefined
  /** Default `https://zapier.com/oauth/token` [ZAPIER_TOKEN_URL]. */
  readonly tokenUrl?: string | undefined
  /** Default `https://connect.zapier.com` [ZAPIER_CONNECT_URL]. */
  readonly connectUrl?: string | undefined
  /**
   * Scope of the access token (space separated); default
   * `external action:run authentication connection:read zap zap:write` [ZAPIER_SCOPE].
   */
  readonly scope?: string | undefined
  /** Scope of a connect token; default `connection:write` [ZAPIER_CONNECT_SCOPE]. */
  readonly connectScope?: string | undefined
  /** Default `urn:ietf:params:oauth:grant-type:token-exchange` [ZAPIER_GRANT_TYPE]. */
  readonly grantType?: string | undefined
  /** `subject_token_type` of the partner JWT; default `urn:ietf:params:oauth:token-type:external-jwt` [ZAPIER_JWT_TOKEN_TYPE]. */
  readonly jwtTokenType?: string | undefined
  /** The access token's type URN; default `urn:ietf:params:oauth:token-type:access-token` [ZAPIER_ACCESS_TOKEN_TYPE]. */
  readonly accessTokenType?: string | undefined
  /** The connect token's type URN; default `urn:ietf:params:oauth:token-type:connect-token` [ZAPIER_CONNECT_TOKEN_TYPE]. */
  readonly connectTokenType?: string | undefined
  /** Timeout of one attempt (request and whole body); default 30 seconds [ZAPIER_REQUEST_TIMEOUT]. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** The first create-run body shape tried; default `flat` [ZAPIER_RUN_BODY_SHAPE]. */
  readonly runBodyShape?: RunBodyShape | undefined
  /**
   * How a run's state is read; default `poll` [ZAPIER_RUN_READS]. With `long-poll` each read is the Actions API's
   * "Read an Action run", `GET {apiUrl}/actions/v2/runs/{id}?wait_seconds=N`: Zapier holds it until the run ends
   * or `longPollWait` passes (202: read again at once, or after its `Retry-After`; a read that comes back early
   * without one is repeated after 1 s). Those reads are metered in their own bucket of the rate limiter
   * (`actions_api_results`, Zapier's name for it; same limit and window), not the 60/min one. Confirmed: the route,
   * `wait_seconds`, 202 and the separate bucket. Not documented: whether ids created by `POST /v2/action-runs/` can
   * be read there; so a 404 for a run that `GET /v2/action-runs/{id}/` knows switches this client back to `poll`
   * for good (logged once), as the create-body fallback does.
   */
  readonly runReads?: RunReads | undefined
  /** How long one long-poll read is held at most (`wait_seconds`, whole seconds); default 30 s [ZAPIER_LONG_POLL_WAIT]. */
  readonly longPollWait?: Duration.DurationInput | undefined
  /** Attempts per request, the first included; default 3 [ZAPIER_MAX_ATTEMPTS]. */
  readonly maxAttempts?: number | undefined
  /** Base of the exponential backoff; default 200 ms [ZAPIER_RETRY_BASE_DELAY]. */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
  /** Cap of one backoff delay; default 20 s [ZAPIER_RETRY_MAX_DELAY]. */
  readonly retryMaxDelay?: Duration.DurationInput | undefined
  /** The longest server hint (`Retry-After`) waited for; above it fails fast; default 60 s [ZAPIER_MAX_RETRY_AFTER]. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** The wait after a 429 without a hint; default 60 s (Zapier's documented cooldown) [ZAPIER_RATE_LIMIT_COOLDOWN]. */
  readonly rateLimitCooldown?: Duration.DurationInput | undefined
  /** Capacity of the client-wide retry budget (5 per retry, 10 after a timeout); default 500 [ZAPIER_RETRY_BUDGET]. */
  readonly retryBudget?: number | undefined
  /** Response bodies larger than this are not read; default 1 MiB [ZAPIER_MAX_RESPONSE_BYTES]. */
  readonly maxResponseBytes?: number | undefined
  /** `limit` of list requests; default 100 [ZAPIER_PAGE_SIZE]. */
  readonly pageSize?: number | undefined
  /**
   * The Trigger Inbox API's path under `apiUrl`; default `/trigger-inbox/api/v1` (the guides, curl samples and
   * Zapier's SDK); the OpenAPI file declares `/trigger-inbox/v1` [ZAPIER_TRIGGER_INBOX_PATH].
   */
  readonly triggerInboxPath?: string | undefined
  /**
   * The client-side rate limit of API requests (`/v2`; the token endpoint is not metered): each attempt takes a
   * slot of a strict sliding window first, waiters are served first come, first served (many pending polls share
   * the budget fairly), and a 429 pauses the whole budget for its `Retry-After` (`rateLimitCooldown` when absent,
   * at most `maxRetryAfter`).
   *
   * On by default at Zapier's published 60 requests/min per IP, counted over 61 s (the limiter's safety margin):
   * staying under the limit costs at most a request's wait, while a 429 costs everyone a 60 s cooldown. `false`
   * turns it off (for a limit enforced elsewhere). When the layer's context holds a {@link RateLimiter.RateLimiter}
   * (e.g. `RateLimiterRedis.layer`, to share one partner budget across processes), that one is used instead of a
   * new in-memory one, and these numbers are ignored (every limiter applies its margin by default)
   * [ZAPIER_RATE_LIMIT (a number, or `off`), ZAPIER_RATE_LIMIT_WINDOW, ZAPIER_RATE_LIMIT_MARGIN,
   * ZAPIER_RATE_LIMIT_MAX_WAIT].
   *
   * @example
   * ```ts
   * // One budget for the fleet: Zapier's 150 requests/min per partner (counted over 61 s), shared through Redis.
   * ZapierHttp.layer(options).pipe(
   *   Layer.provide(RateLimiterRedis.layer({ redis: { url }, limit: 150, window: "1 minute" })),
   *   Layer.provide(NodeHttpClient.layerUndici)
   * )
   * ```
   */
  readonly rateLimit?: RateLimitOptions | false | undefined
  /**
   * The partner's public URL for run callbacks [ZAPIER_RUN_CALLBACK_URL]. When set, every run is created with
   * `callback_url` = this URL plus a per-run routing token (`zapier_run_token`), and `EmbeddedActions.run`
   * completes from the callback (mount `RunCallback.handler` at this URL's path), polling only as a safety net.
   * Zapier's rules apply and are checked here (a `ConfigError` naming `runCallbackUrl`): HTTPS, a public host, at
   * most 2048 characters with the token. Unset: runs are polled, as without callbacks.
   *
   * The run-event bus is the `RunEvents` in the layer's context (`RunEventsRedis.layer` for a fleet, so the
   * replica that receives a callback completes the await on another), else an in-memory one; either way the
   * layer provides it, and the `RunCallback.Receiver` the handler needs.
   */
  readonly runCallbackUrl?: string | undefined
  /** The JWKS of Zapier's callback signatures; default `https://zapier.com/.well-known/jwks.json` [ZAPIER_RUN_CALLBACK_JWKS_URL]. */
  readonly runCallbackJwksUrl?: string | undefined
  /** Tolerance on a callback signature's `iat`/`exp`; default 30 s, at most 5 minutes [ZAPIER_RUN_CALLBACK_CLOCK_SKEW]. */
  readonly runCallbackClockSkew?: Duration.DurationInput | undefined
  /** The largest callback body read; default 1 MiB [ZAPIER_RUN_CALLBACK_MAX_BYTES]. */
  readonly runCallbackMaxBytes?: number | undefined
  /**
   * Test only: accept `http:` URLs for loopback hosts (127.0.0.1, localhost, ::1), e.g. a fake Zapier server.
   * Never needed against Zapier. Default false [ZAPIER_ALLOW_INSECURE_HTTP].
   */
  readonly allowInsecureHttp?: boolean | undefined
}
