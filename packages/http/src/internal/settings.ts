/**
 * Options → validated settings, once per layer: URLs checked (https only unless explicitly allowed for loopback),
 * the JWT lifetime bounded, and the partner's signing key imported exactly once.
 * @internal
 */
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"

import type { Algorithm, Options, RunBodyShape, RunReads } from "./options.js"

/** @internal */
export const algorithms: ReadonlyArray<Algorithm> = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512"]

/** @internal */
export const defaults = {
  algorithm: "ES256" as Algorithm,
  audience: "connect.zapier.com",
  userClaim: "sub",
  tenantClaim: "org_id",
  jwtLifetime: Duration.minutes(5),
  apiUrl: "https://api.zapier.com",
  tokenUrl: "https://zapier.com/oauth/token",
  connectUrl: "https://connect.zapier.com",
  scope: "external action:run authentication connection:read zap zap:write",
  connectScope: "connection:write",
  grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
  jwtTokenType: "urn:ietf:params:oauth:token-type:external-jwt",
  accessTokenType: "urn:ietf:params:oauth:token-type:access-token",
  connectTokenType: "urn:ietf:params:oauth:token-type:connect-token",
  requestTimeout: Duration.seconds(30),
  runBodyShape: "flat" as RunBodyShape,
  runReads: "poll" as RunReads,
  longPollWait: Duration.seconds(30),
  /** The rate limiter's bucket of the long-poll reads. */
  longPollBucket: "actions_api_results",
  maxAttempts: 3,
  retryBaseDelay: Duration.millis(200),
  retryMaxDelay: Duration.seconds(20),
  maxRetryAfter: Duration.seconds(60),
  rateLimitCooldown: Duration.seconds(60),
  retryBudget: 500,
  maxResponseBytes: 1024 * 1024,
  pageSize: 100,
  /**
   * The Trigger Inbox API's path under `apiUrl`: the guides, curl samples and Zapier's SDK use
   * `/trigger-inbox/api/v1`; the OpenAPI file declares `/trigger-inbox/v1`.
   */
  triggerInboxPath: "/trigger-inbox/api/v1",
  /**
   * The API requests' rate limit: Zapier's published 60 requests/min per IP, counted over 61 s (the limiter's
   * default margin of 1 s covers the time between taking a slot and Zapier counting the request); a request waits
   * at most 2 minutes for a slot (a full window and a full cooldown).
   */
  rateLimit: { limit: 60, window: Duration.minutes(1), maxWait: Duration.minutes(2) },
  /** Lifetime assumed when the token response has no `expires_in` (Zapier's SDK assumes one hour). */
  accessTokenLifetime: Duration.hours(1),
  /** Lifetime assumed for a connect token without `expires_in` (documented: 6 minutes). */
  connectTokenLifetime: Duration.minutes(6),
  /** Zapier's JWKS, against which run callbacks' signatures are verified. */
  runCallbackJwksUrl: "https://zapier.com/.well-known/jwks.json",
  /** Tolerance on a run callback signature's `iat`/`exp`. */
  runCallbackClockSkew: Duration.seconds(30),
  /** The largest run callback body read. */
  runCallbackMaxBytes: 1024 * 1024,
  /** The least time between two fetches of Zapier's key set caused by an unknown `kid`. */
  runCallbackKeyRefetch: Duration.minutes(1)
} as const

/** Zapier's limit on a `callback_url`. @internal */
export const maxCallbackUrlLength = 2048

/** The most a partner JWT may live (Zapier: "keep short, for example max ~5 minutes"). @internal */
export const maxJwtLifetime = Duration.minutes(5)

/** Validated, normalised settings. @internal */
export interface Settings {
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly key: Jose.CryptoKey
  readonly keyId: string
  readonly algorithm: Algorithm
  readonly issuer: string
  readonly audience: string
  readonly userClaim: string
  readonly tenantClaim: string
  readonly jwtLifetimeSeconds: number
  readonly apiUrl: string
  readonly tokenUrl: string
  readonly tokenEndpoint: string
  readonly connectUrl: string
  readonly scope: string
  readonly connectScope: string
  readonly grantType: string
  readonly jwtTokenType: string
  readonly accessTokenType: string
  readonly connectTokenType: string
  readonly requestTimeout: Duration.Duration
  readonly runBodyShape: RunBodyShape
  readonly runReads: RunReads
  /** Whole seconds, at least 1. */
  readonly longPollWaitSeconds: number
  readonly maxAttempts: number
  readonly retryBaseDelay: Duration.Duration
  readonly retryMaxDelay: Duration.Duration
  readonly maxRetryAfter: Duration.Duration
  readonly rateLimitCooldown: Duration.Duration
  readonly retryBudget: number
  readonly maxResponseBytes: number
  readonly pageSize: number
  /** The Trigger Inbox API's path under `apiUrl` (no trailing slash). */
  readonly triggerInboxPath: string
  /** The partner's public run callback URL (without the routing token), when run callbacks are on. */
  readonly runCallbackUrl: string | undefined
  readonly runCallbackJwksUrl: string
  readonly runCallbackClockSkew: Duration.Duration
  readonly runCallbackMaxBytes: number
  /** The client-side rate limit of API requests, or `false` when off. */
  readonly rateLimit:
    | {
        readonly limit: number
        readonly window: Duration.Duration
        /** `undefined`: the limiter's default margin. */
        readonly margin?: Duration.Duration | undefined
        readonly maxWait: Duration.Duration
      }
    | false
}

const invalid = (path: string, message: string) => ConfigError.InvalidData([path], message)

const nonEmpty = (
  path: string,
  value: string | undefined,
  hint: string
): Effect.Effect<string, ConfigError.ConfigError> =>
  value !== undefined && value.trim().length > 0
    ? Effect.succeed(value.trim())
    : Effect.fail(ConfigError.MissingData([path], `${path} is required: ${hint}`))

/** `?zapier_run_token=` (or `&`) and a 43-character token: what the library appends to the callback URL. */
const callbackTokenOverhead = "&zapier_run_token=".length + 43

const reservedClaims = new Set(["iss", "aud", "iat", "nbf", "exp", "jti"])

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

const checkUrl = (
  path: string,
  value: string,
  allowInsecureHttp: boolean,
  stripSlash = true
): Effect.Effect<string, ConfigError.ConfigError> => {
  const normalise = (u: string) => (stripSlash ? u.replace(/\/+$/, "") : u)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Effect.fail(invalid(path, `${path} is not a valid absolute URL`))
  }
  if (url.search !== "" || url.hash !== "") {
    return Effect.fail(invalid(path, `${path} must not have a query or a fragment`))
  }
  if (url.protocol === "https:") return Effect.succeed(normalise(value))
  if (url.protocol === "http:" && allowInsecureHttp && loopbackHosts.has(url.hostname)) {
    return Effect.succeed(normalise(value))
  }
  if (url.protocol === "http:") {
    return Effect.fail(
      invalid(
        path,
        `${path} must use https: (plain http: is only accepted for a loopback host with the test-only option allowInsecureHttp: true)`
      )
    )
  }
  return Effect.fail(invalid(path, `${path} must be an https: URL`))
}

const duration = (
  path: string,
  value: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
  allowZero: boolean
): Effect.Effect<Duration.Duration, ConfigError.ConfigError> => {
  if (value === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(value)
  if (decoded._tag === "None") return Effect.fail(invalid(path, `${path} is not a duration`))
  const ok = allowZero
    ? Duration.greaterThanOrEqualTo(decoded.value, Duration.zero)
    : Duration.greaterThan(decoded.value, Duration.zero)
  return ok
    ? Effect.succeed(decoded.value)
    : Effect.fail(invalid(path, `${path} must ${allowZero ? "not be negative" : "be greater than zero"}`))
}
const positiveDuration = (path: string, value: Duration.DurationInput | undefined, fallback: Duration.Duration) =>
  duration(path, value, fallback, false)
const nonNegativeDuration = (path: string, value: Duration.DurationInput | undefined, fallback: Duration.Duration) =>
  duration(path, value, fallback, true)

const isPrivateIpv4 = (host: string): boolean => {
  const parts = host.split(".")
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return false
  const [a, b] = parts.map(Number) as [number, number, number, number]
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    a >= 224
  )
}

const isPrivateHost = (hostname: string): boolean => {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "")
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal")) {
    return true
  }
  if (isPrivateIpv4(host)) return true
  if (host.includes(":")) {
    // IPv6 literals: loopback, unspecified, unique local (fc00::/7), link local (fe80::/10), IPv4-mapped private.
    if (host === "::1" || host === "::") return true
    if (/^f[cd][0-9a-f]{0,2}:/.test(host) || /^fe[89ab][0-9a-f]?:/.test(host)) return true
    const mapped = host.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/)
    return mapped !== null && isPrivateIpv4(mapped[1]!)
  }
  return !host.includes(".") // a single-label name only resolves on a private network
}

/**
 * The run callback URL: Zapier accepts only HTTPS, a public address and at most 2048 characters (the routing
 * token the library appends included). A host name is checked as written; one that resolves to a private address
 * cannot be told from here and is refused by Zapier at the first create. With the test-only `allowInsecureHttp`,
 * a loopback URL (http or https) is accepted, for a local fake.
 * @internal
 */
export const checkCallbackUrl = (
  path: string,
  value: string,
  allowInsecureHttp: boolean,
  tokenOverhead: number
): Effect.Effect<string, ConfigError.ConfigError> => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Effect.fail(invalid(path, `${path} is not a valid absolute URL`))
  }
  if (url.hash !== "") return Effect.fail(invalid(path, `${path} must not have a fragment`))
  if (url.username !== "" || url.password !== "") {
    return Effect.fail(invalid(path, `${path} must not carry credentials`))
  }
  if (value.length + tokenOverhead > maxCallbackUrlLength) {
    return Effect.fail(
      invalid(
        path,
        `${path} is ${value.length} characters; with the routing token (${tokenOverhead} more) it must stay within Zapier's ${maxCallbackUrlLength}`
      )
    )
  }
  const loopback = loopbackHosts.has(url.hostname)
  if (allowInsecureHttp && loopback && (url.protocol === "http:" || url.protocol === "https:")) {
    return Effect.succeed(value)
  }
  if (url.protocol !== "https:") {
    return Effect.fail(
      invalid(
        path,
        `${path} must use https: (Zapier posts run callbacks over HTTPS only; plain http: is only accepted for a loopback host with the test-only option allowInsecureHttp: true)`
      )
    )
  }
  if (isPrivateHost(url.hostname)) {
    return Effect.fail(
      invalid(path, `${path} must point to a public host: Zapier refuses private, loopback and link-local addresses`)
    )
  }
  return Effect.succeed(value)
}

const positiveInt = (
  path: string,
  value: number | undefined,
  fallback: number,
  min = 1
): Effect.Effect<number, ConfigError.ConfigError> => {
  if (value === undefined) return Effect.succeed(fallback)
  return (Number.isInteger(value) || value === Number.POSITIVE_INFINITY) && value >= min
    ? Effect.succeed(value)
    : Effect.fail(invalid(path, `${path} must be an integer ≥ ${min}`))
}

/**
 * Imports the partner's private signing key (PKCS#8 PEM, or a private JWK as JSON) for the algorithm, once.
 * The messages say what is wrong with the key without ever quoting it.
 * @internal
 */
export const importSigningKey = (
  signingKey: Redacted.Redacted<string>,
  algorithm: Algorithm
): Effect.Effect<Jose.CryptoKey, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    // Environment variables often carry a PEM with literal "\n" escapes.
    const text = Redacted.value(signingKey).trim().replace(/\\n/g, "\n")
    const family = algorithm.startsWith("ES") ? "EC (P-256/P-384/P-521)" : "RSA"
    if (text.length === 0) {
      return yield* Effect.fail(ConfigError.MissingData(["signingKey"], "signingKey is empty"))
    }
    if (text.startsWith("{")) {
      let jwk: unknown
      try {
        jwk = JSON.parse(text)
      } catch {
        return yield* Effect.fail(invalid("signingKey", "signingKey looks like a JWK but is not valid JSON"))
      }
      if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) {
        return yield* Effect.fail(invalid("signingKey", "signingKey must be a JWK object"))
      }
      if (!("d" in jwk)) {
        return yield* Effect.fail(
          invalid("signingKey", 'signingKey is a public JWK; the private key (with its "d" member) is needed to sign')
        )
      }
      const key = yield* Effect.tryPromise({
        try: () => Jose.importJWK(jwk as Jose.JWK, algorithm),
        catch: () =>
          invalid("signingKey", `signingKey could not be imported as a private ${family} JWK for ${algorithm}`)
      })
      if (key instanceof Uint8Array || key.type !== "private") {
        return yield* Effect.fail(invalid("signingKey", `signingKey must be a private ${family} key for ${algorithm}`))
      }
      return key
    }
    if (text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
      return yield* Effect.fail(
        invalid("signingKey", "signingKey is an encrypted PEM; provide it unencrypted (PKCS#8)")
      )
    }
    if (/-----BEGIN (RSA|EC) PRIVATE KEY-----/.test(text)) {
      return yield* Effect.fail(
        invalid(
          "signingKey",
          "signingKey is a PKCS#1/SEC1 PEM; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt) or provide a JWK"
        )
      )
    }
    if (text.includes("-----BEGIN PUBLIC KEY-----") || text.includes("-----BEGIN CERTIFICATE-----")) {
      return yield* Effect.fail(invalid("signingKey", "signingKey is a public key; the private key is needed to sign"))
    }
    if (!text.includes("-----BEGIN PRIVATE KEY-----")) {
      return yield* Effect.fail(
        invalid("signingKey", "signingKey must be a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) or a private JWK as JSON")
      )
    }
    return yield* Effect.tryPromise({
      try: () => Jose.importPKCS8(text, algorithm),
      catch: () =>
        invalid(
          "signingKey",
          `signingKey could not be imported for ${algorithm}: it must be a ${family} private key (check the algorithm)`
        )
    })
  })

/**
 * Validates the options and imports the key.
 * @internal
 */
export const resolve = (options: Options): Effect.Effect<Settings, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const allowInsecure = options.allowInsecureHttp === true
    const clientId = yield* nonEmpty("clientId", options.clientId, "the OAuth client id Zapier issued to the partner")
    const keyId = yield* nonEmpty("keyId", options.keyId, "the kid of the signing key in the partner's JWKS")
    const issuer = yield* nonEmpty("issuer", options.issuer, "the JWT issuer registered with Zapier")
    if (options.clientSecret === undefined || Redacted.value(options.clientSecret).length === 0) {
      return yield* Effect.fail(ConfigError.MissingData(["clientSecret"], "clientSecret is required"))
    }
    if (options.signingKey === undefined) {
      return yield* Effect.fail(
        ConfigError.MissingData(["signingKey"], "signingKey is required: a PKCS#8 PEM or a private JWK as JSON")
      )
    }
    const algorithm = options.algorithm ?? defaults.algorithm
    if (!algorithms.includes(algorithm)) {
      return yield* Effect.fail(invalid("algorithm", `algorithm must be one of ${algorithms.join(", ")}`))
    }
    const jwtLifetime = yield* positiveDuration("jwtLifetime", options.jwtLifetime, defaults.jwtLifetime)
    if (Duration.greaterThan(jwtLifetime, maxJwtLifetime)) {
      return yield* Effect.fail(
        invalid(
          "jwtLifetime",
          `jwtLifetime is ${Duration.format(jwtLifetime)}; the partner JWT may live at most 5 minutes`
        )
      )
    }
    const jwtLifetimeSeconds = Math.floor(Duration.toSeconds(jwtLifetime))
    if (jwtLifetimeSeconds < 1) {
      return yield* Effect.fail(invalid("jwtLifetime", "jwtLifetime must be at least 1 second"))
    }
    const userClaim = options.userClaim ?? defaults.userClaim
    const tenantClaim = options.tenantClaim ?? defaults.tenantClaim
    for (const [path, claim] of [
      ["userClaim", userClaim],
      ["tenantClaim", tenantClaim]
    ] as const) {
      if (claim.length === 0 || reservedClaims.has(claim)) {
        return yield* Effect.fail(
          invalid(path, `${path} must be a non-empty claim name other than ${[...reservedClaims].join(", ")}`)
        )
      }
    }
    if (userClaim === tenantClaim) {
      return yield* Effect.fail(invalid("tenantClaim", "userClaim and tenantClaim must be different claims"))
    }
    const apiUrl = yield* checkUrl("apiUrl", options.apiUrl ?? defaults.apiUrl, allowInsecure)
    const tokenUrl = yield* checkUrl("tokenUrl", options.tokenUrl ?? defaults.tokenUrl, allowInsecure, false)
    const connectUrl = yield* checkUrl("connectUrl", options.connectUrl ?? defaults.connectUrl, allowInsecure)
    const runBodyShape = options.runBodyShape ?? defaults.runBodyShape
    if (runBodyShape !== "flat" && runBodyShape !== "data") {
      return yield* Effect.fail(invalid("runBodyShape", `runBodyShape must be "flat" or "data"`))
    }
    const runReads = options.runReads ?? defaults.runReads
    if (runReads !== "poll" && runReads !== "long-poll") {
      return yield* Effect.fail(invalid("runReads", `runReads must be "poll" or "long-poll"`))
    }
    const longPollWait = yield* positiveDuration("longPollWait", options.longPollWait, defaults.longPollWait)
    const longPollWaitSeconds = Math.floor(Duration.toSeconds(longPollWait))
    if (longPollWaitSeconds < 1 || longPollWaitSeconds > 300) {
      return yield* Effect.fail(invalid("longPollWait", "longPollWait must be between 1 second and 5 minutes"))
    }
    const requestTimeout = yield* positiveDuration("requestTimeout", options.requestTimeout, defaults.requestTimeout)
    const retryBaseDelay = yield* positiveDuration("retryBaseDelay", options.retryBaseDelay, defaults.retryBaseDelay)
    const retryMaxDelay = yield* positiveDuration("retryMaxDelay", options.retryMaxDelay, defaults.retryMaxDelay)
    const maxRetryAfter = yield* positiveDuration("maxRetryAfter", options.maxRetryAfter, defaults.maxRetryAfter)
    const rateLimitCooldown = yield* positiveDuration(
      "rateLimitCooldown",
      options.rateLimitCooldown,
      defaults.rateLimitCooldown
    )
    const maxAttempts = yield* positiveInt("maxAttempts", options.maxAttempts, defaults.maxAttempts)
    const retryBudget = yield* positiveInt("retryBudget", options.retryBudget, defaults.retryBudget, 0)
    const maxResponseBytes = yield* positiveInt("maxResponseBytes", options.maxResponseBytes, defaults.maxResponseBytes)
    const pageSize = yield* positiveInt("pageSize", options.pageSize, defaults.pageSize)
    const rateLimit = yield* resolveRateLimit(options.rateLimit)
    const triggerInboxPath = (options.triggerInboxPath ?? defaults.triggerInboxPath).trim().replace(/\/+$/, "")
    if (!/^\/[A-Za-z0-9._~/-]*$/.test(triggerInboxPath)) {
      return yield* Effect.fail(
        invalid("triggerInboxPath", 'triggerInboxPath must be a path such as "/trigger-inbox/api/v1"')
      )
    }
    const runCallbackUrl =
      options.runCallbackUrl === undefined || options.runCallbackUrl.trim().length === 0
        ? undefined
        : yield* checkCallbackUrl("runCallbackUrl", options.runCallbackUrl.trim(), allowInsecure, callbackTokenOverhead)
    const runCallbackJwksUrl = yield* checkUrl(
      "runCallbackJwksUrl",
      options.runCallbackJwksUrl ?? defaults.runCallbackJwksUrl,
      allowInsecure,
      false
    )
    const runCallbackClockSkew = yield* nonNegativeDuration(
      "runCallbackClockSkew",
      options.runCallbackClockSkew,
      defaults.runCallbackClockSkew
    )
    if (Duration.greaterThan(runCallbackClockSkew, Duration.minutes(5))) {
      return yield* Effect.fail(invalid("runCallbackClockSkew", "runCallbackClockSkew may be at most 5 minutes"))
    }
    const runCallbackMaxBytes = yield* positiveInt(
      "runCallbackMaxBytes",
      options.runCallbackMaxBytes,
      defaults.runCallbackMaxBytes,
      1024
    )
    const key = yield* importSigningKey(options.signingKey, algorithm)
    return {
      clientId,
      clientSecret: options.clientSecret,
      key,
      keyId,
      algorithm,
      issuer,
      audience: options.audience ?? defaults.audience,
      userClaim,
      tenantClaim,
      jwtLifetimeSeconds,
      apiUrl,
      tokenUrl,
      tokenEndpoint: `POST ${new URL(tokenUrl).pathname}`,
      connectUrl,
      scope: options.scope ?? defaults.scope,
      connectScope: options.connectScope ?? defaults.connectScope,
      grantType: options.grantType ?? defaults.grantType,
      jwtTokenType: options.jwtTokenType ?? defaults.jwtTokenType,
      accessTokenType: options.accessTokenType ?? defaults.accessTokenType,
      connectTokenType: options.connectTokenType ?? defaults.connectTokenType,
      requestTimeout,
      runBodyShape,
      runReads,
      longPollWaitSeconds,
      maxAttempts,
      retryBaseDelay,
      retryMaxDelay,
      maxRetryAfter,
      rateLimitCooldown,
      retryBudget,
      maxResponseBytes,
      pageSize,
      triggerInboxPath,
      runCallbackUrl,
      runCallbackJwksUrl,
      runCallbackClockSkew,
      runCallbackMaxBytes,
      rateLimit
    }
  })

const resolveRateLimit = (
  option: Options["rateLimit"]
): Effect.Effect<Settings["rateLimit"], ConfigError.ConfigError> =>
  Effect.gen(function* () {
    if (option === false) return false
    if (option === undefined) return defaults.rateLimit
    if (typeof option !== "object" || option === null) {
      return yield* Effect.fail(invalid("rateLimit", "rateLimit must be false or { limit, window, maxWait }"))
    }
    const limit = yield* positiveInt("rateLimit.limit", option.limit, defaults.rateLimit.limit)
    if (limit === Number.POSITIVE_INFINITY) {
      return yield* Effect.fail(invalid("rateLimit.limit", "rateLimit.limit must be finite (use rateLimit: false)"))
    }
    const window = yield* positiveDuration("rateLimit.window", option.window, defaults.rateLimit.window)
    const maxWait = yield* nonNegativeDuration("rateLimit.maxWait", option.maxWait, defaults.rateLimit.maxWait)
    if (option.margin === undefined) return { limit, window, maxWait }
    const margin = yield* nonNegativeDuration("rateLimit.margin", option.margin, Duration.zero)
    return { limit, window, margin, maxWait }
  })
