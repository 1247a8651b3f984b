/**
 * Area: tokens. The token endpoint over HTTP (partner JWT verification, access and connect tokens). The model side
 * of tokens is in the kernel (every request authenticates), and core's `TokenExchange` is served by the in-memory
 * client kit (every service uses its token cache).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Domain } from "@effect-zapier/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Jose from "jose"
import type { OAuthFailure } from "../model/failures.js"
import { ApiFailure, oauthFromApi } from "../model/failures.js"
import type { Issued } from "../model/kernel.js"
import type { Routes, ServerKit, TokenTypes } from "../server/kit.js"
import { defaultTokenTypes, json, OptionalString, oauthError, respond } from "../server/kit.js"
import type * as FZ from "../types.js"

/** The endpoint of this area, as the ledger and fault rules name it. */
export const endpoints = {
  token: "POST /oauth/token"
} as const

const TokenForm = Schema.Struct({
  grant_type: OptionalString,
  client_id: OptionalString,
  client_secret: OptionalString,
  subject_token: OptionalString,
  subject_token_type: OptionalString,
  requested_token_type: OptionalString,
  scope: OptionalString,
  resource: OptionalString
})

const allowedAlgorithms = new Set(["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"])

const joseReason = (error: unknown): string => {
  if (error instanceof Jose.errors.JWTExpired) return "the assertion has expired (exp)"
  if (error instanceof Jose.errors.JWTClaimValidationFailed) {
    return `the assertion's "${error.claim}" claim is invalid (${error.reason})`
  }
  if (error instanceof Jose.errors.JWSSignatureVerificationFailed) {
    return "the assertion's signature does not verify against the registered key"
  }
  if (error instanceof Jose.errors.JOSEAlgNotAllowed) return "the assertion's alg is not allowed for this key"
  return "the assertion could not be verified"
}

/** The token endpoint's route. */
export const routes = (server: ServerKit): Effect.Effect<Routes> =>
  Effect.gen(function* () {
    const { gated, handle, model, options } = server

    const types: TokenTypes = { ...defaultTokenTypes, ...options.tokenTypes }
    const maxLifetime = Math.floor(
      Duration.toMillis(Duration.decode(options.maxJwtLifetime ?? Duration.seconds(300))) / 1000
    )
    const tolerance = Math.floor(
      Duration.toMillis(Duration.decode(options.clockTolerance ?? Duration.seconds(5))) / 1000
    )
    const requireJti = options.requireJti ?? true
    const keys = yield* Ref.make(new Map<string, Jose.CryptoKey | Uint8Array>())

    const importKey = (key: FZ.PartnerKeySeed, alg: string) =>
      Effect.gen(function* () {
        const cacheKey = `${key.kid}\u0000${alg}\u0000${typeof key.publicKey === "string" ? key.publicKey : JSON.stringify(key.publicKey)}`
        const cached = (yield* Ref.get(keys)).get(cacheKey)
        if (cached !== undefined) return cached
        const imported = yield* Effect.tryPromise({
          try: () =>
            typeof key.publicKey === "string"
              ? Jose.importSPKI(key.publicKey, alg)
              : Jose.importJWK(key.publicKey, alg),
          catch: () => "the registered key cannot be used with this alg"
        })
        yield* Ref.update(keys, (m) => new Map(m).set(cacheKey, imported))
        return imported
      })

    const invalidGrant = (description: string) => oauthFromApi(ApiFailure.invalid(description), "invalid_grant")

    /** Verifies the partner JWT (signature, alg, kid, aud, iss, exp/nbf/iat, lifetime, claims, jti). */
    const verifyJwt = (jwt: string) =>
      Effect.gen(function* () {
        const partner = yield* model.partner
        const header = yield* Effect.try({
          try: () => Jose.decodeProtectedHeader(jwt),
          catch: () => invalidGrant("The subject_token is not a JWT.")
        })
        const alg = header.alg ?? ""
        if (!allowedAlgorithms.has(alg)) {
          return yield* Effect.fail(invalidGrant(`The JWT alg "${alg}" is not one of RS256/384/512, ES256/384/512.`))
        }
        const key = partner.keys.find((k) => k.kid === header.kid)
        if (header.kid === undefined || key === undefined) {
          return yield* Effect.fail(invalidGrant("The JWT kid does not match a registered partner key."))
        }
        if (key.alg !== undefined && key.alg !== alg) {
          return yield* Effect.fail(invalidGrant(`The key ${key.kid} is registered for ${key.alg}, not ${alg}.`))
        }
        const publicKey = yield* importKey(key, alg).pipe(Effect.mapError(invalidGrant))
        const now = yield* model.now
        const required = ["iat", "exp", "nbf", partner.userClaim, partner.tenantClaim, ...(requireJti ? ["jti"] : [])]
        const { payload } = yield* Effect.tryPromise({
          try: () =>
            Jose.jwtVerify(jwt, publicKey, {
              algorithms: [alg],
              audience: partner.audience,
              issuer: partner.issuer,
              currentDate: new Date(now),
              clockTolerance: tolerance,
              requiredClaims: required
            }),
          catch: (e) => invalidGrant(`The subject_token was refused: ${joseReason(e)}.`)
        })
        const iat = payload.iat ?? 0
        const exp = payload.exp ?? 0
        if (iat > Math.floor(now / 1000) + tolerance) {
          return yield* Effect.fail(invalidGrant("The JWT was issued in the future (iat)."))
        }
        if (exp - iat > maxLifetime) {
          return yield* Effect.fail(invalidGrant(`The JWT lives longer than ${maxLifetime} s (exp - iat).`))
        }
        const user = yield* Schema.decodeUnknown(Domain.EndUser)({
          userId: payload[partner.userClaim],
          tenantId: payload[partner.tenantClaim]
        }).pipe(
          Effect.mapError(() =>
            invalidGrant(
              `The JWT's "${partner.userClaim}" and "${partner.tenantClaim}" claims must be non-empty strings.`
            )
          )
        )
        if (requireJti) {
          const jti = payload.jti
          // Remembered as long as the JWT is accepted: past its exp by up to the clock tolerance.
          if (typeof jti !== "string" || jti.length === 0 || !(yield* model.useJti(jti, exp + tolerance))) {
            return yield* Effect.fail(invalidGrant("The JWT's jti was already used."))
          }
        }
        return user
      })

    const tokenResponse = (issued: Issued, issuedType: string) =>
      json(
        {
          access_token: issued.token,
          token_type: "Bearer",
          expires_in: issued.expiresIn,
          scope: issued.scope,
          issued_token_type: issuedType
        },
        200,
        { "cache-control": "no-store", pragma: "no-cache" }
      )

    const token = handle(endpoints.token)(
      Effect.gen(function* () {
        const req = yield* HttpServerRequest.HttpServerRequest
        const authorization = req.headers.authorization
        const basic = authorization?.toLowerCase().startsWith("basic ") ?? false
        const now = yield* model.now
        const fail = (failure: OAuthFailure, user?: Domain.EndUser) => respond(oauthError(failure, basic), user)
        const contentType = req.headers["content-type"] ?? ""
        if (!contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
          return fail({
            status: 400,
            error: "invalid_request",
            description: "The body must be application/x-www-form-urlencoded."
          })
        }
        const form = yield* req.urlParamsBody.pipe(
          Effect.flatMap((params) => Schema.decodeUnknown(TokenForm)(Object.fromEntries(params))),
          Effect.either
        )
        if (Either.isLeft(form)) {
          return fail({ status: 400, error: "invalid_request", description: "The form body could not be read." })
        }
        const f = form.right
        // Client authentication: HTTP Basic or the form body (not both with different values).
        let clientId = f.client_id
        let clientSecret = f.client_secret
        if (basic && authorization !== undefined) {
          const decoded = Either.try(() => globalThis.atob(authorization.slice(6).trim()))
          const [id, secret] = Either.isRight(decoded) ? decoded.right.split(/:(.*)/s) : []
          const unform = (s: string | undefined) =>
            s === undefined ? undefined : decodeURIComponent(s.replace(/\+/g, " "))
          const basicId = Either.getOrUndefined(Either.try(() => unform(id)))
          const basicSecret = Either.getOrUndefined(Either.try(() => unform(secret)))
          if (
            (clientId !== undefined && clientId !== basicId) ||
            (clientSecret !== undefined && clientSecret !== basicSecret)
          ) {
            return fail({ status: 400, error: "invalid_request", description: "Use one client authentication method." })
          }
          clientId = basicId
          clientSecret = basicSecret
        }
        const partner = yield* model.partner
        if (clientId !== partner.clientId || clientSecret !== partner.clientSecret) {
          return fail({ status: 401, error: "invalid_client", description: "Client authentication failed." })
        }
        if (f.grant_type !== types.grantType) {
          return fail({
            status: 400,
            error: "unsupported_grant_type",
            description: `grant_type must be ${types.grantType}.`
          })
        }
        if (f.subject_token === undefined || f.subject_token.length === 0) {
          return fail({ status: 400, error: "invalid_request", description: "subject_token is required." })
        }
        const requested = f.requested_token_type ?? types.accessToken
        if (requested !== types.accessToken && requested !== types.connectToken) {
          return fail({
            status: 400,
            error: "invalid_request",
            description: `requested_token_type must be ${types.accessToken} or ${types.connectToken}.`
          })
        }
        if (f.subject_token_type === types.jwt) {
          const user = yield* Effect.either(verifyJwt(f.subject_token))
          if (Either.isLeft(user)) return fail(user.left)
          if (requested === types.connectToken && f.resource === undefined) {
            return fail(
              { status: 400, error: "invalid_target", description: "A connect token needs a resource." },
              user.right
            )
          }
          return yield* gated(
            { method: "POST", endpoint: endpoints.token, path: "/oauth/token", user: user.right },
            requested === types.accessToken
              ? Effect.map(model.exchangeAccess(user.right, f.scope), (i) => tokenResponse(i, types.accessToken))
              : Effect.map(model.connectFor(user.right, f.resource ?? "", f.scope), (i) =>
                  tokenResponse(i, types.connectToken)
                ),
            (failure, code) => oauthError(oauthFromApi(failure, code), basic, now),
            (e) => oauthError(e, basic)
          )
        }
        if (f.subject_token_type === types.accessToken) {
          if (requested !== types.connectToken) {
            return fail({
              status: 400,
              error: "invalid_request",
              description: "An access token can only be exchanged for a connect token."
            })
          }
          if (f.resource === undefined) {
            return fail({ status: 400, error: "invalid_target", description: "A connect token needs a resource." })
          }
          const owner = yield* Effect.option(model.authenticate(f.subject_token))
          return yield* gated(
            {
              method: "POST",
              endpoint: endpoints.token,
              path: "/oauth/token",
              user: Option.getOrUndefined(owner)
            },
            Effect.map(model.exchangeConnect(f.subject_token, f.resource, f.scope), (i) =>
              tokenResponse(i, types.connectToken)
            ),
            (failure, code) => oauthError(oauthFromApi(failure, code), basic, now),
            (e) => oauthError(e, basic)
          )
        }
        return fail({
          status: 400,
          error: "invalid_request",
          description: `subject_token_type must be ${types.jwt} or ${types.accessToken}.`
        })
      })
    )

    // --- /v2 --------------------------------------------------------------------------------------------------

    return [HttpRouter.makeRoute("POST", "/oauth/token", token)]
  })
