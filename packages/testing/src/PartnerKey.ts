/**
 * A partner signing key for tests and the quickstart: generate a key pair with jose, give the private half to the
 * client (PKCS#8 PEM or private JWK, both `Redacted`), and register the public half in a FakeZapier seed so
 * `FakeZapierServer` verifies the client's JWTs against it.
 *
 * @example
 * ```ts
 * import { FakeZapier, FakeZapierServer, PartnerKey } from "@effect-zapier/testing"
 * import { Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const key = yield* PartnerKey.generate()
 *   const server = FakeZapierServer.layer({ seed: PartnerKey.register(FakeZapier.sampleSeed, key) })
 *   // sign with key.privateKeyPem / key.kid / key.alg
 * })
 * ```
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import type { Seed } from "./FakeZapier.js"

/**
 * The algorithms Zapier accepts for partner JWTs.
 * @since 0.1.0
 */
export type Algorithm = "RS256" | "RS384" | "RS512" | "ES256" | "ES384" | "ES512"

/**
 * A generated partner key pair.
 * @since 0.1.0
 * @category models
 */
export interface PartnerKey {
  readonly kid: string
  readonly alg: Algorithm
  /** The private key as PKCS#8 PEM. */
  readonly privateKeyPem: Redacted.Redacted<string>
  /** The private key as a JWK, serialised as JSON (with `kid` and `alg`). */
  readonly privateJwk: Redacted.Redacted<string>
  /** The public key as a JWK (with `kid`, `alg`, `use: "sig"`), as a JWKS would list it. */
  readonly publicJwk: Jose.JWK
  /** The public key as SPKI PEM. */
  readonly publicKeyPem: string
}

/**
 * Generates a key pair (default ES256, kid `fake-partner-key`).
 * @since 0.1.0
 * @category constructors
 */
export const generate = (options?: {
  readonly alg?: Algorithm | undefined
  readonly kid?: string | undefined
}): Effect.Effect<PartnerKey> =>
  Effect.promise(async () => {
    const alg = options?.alg ?? "ES256"
    const kid = options?.kid ?? "fake-partner-key"
    const { privateKey, publicKey } = await Jose.generateKeyPair(alg, { extractable: true })
    const privateJwk = { ...(await Jose.exportJWK(privateKey)), kid, alg }
    return {
      kid,
      alg,
      privateKeyPem: Redacted.make(await Jose.exportPKCS8(privateKey)),
      privateJwk: Redacted.make(JSON.stringify(privateJwk)),
      publicJwk: { ...(await Jose.exportJWK(publicKey)), kid, alg, use: "sig" },
      publicKeyPem: await Jose.exportSPKI(publicKey)
    } satisfies PartnerKey
  }).pipe(Effect.withSpan("PartnerKey.generate"))

/**
 * The seed with the key's public half registered for the partner (as a JWK, or as SPKI PEM), replacing any key
 * with the same `kid`.
 * @since 0.1.0
 * @category combinators
 */
export const register = (seed: Seed, key: PartnerKey, format: "jwk" | "pem" = "jwk"): Seed => ({
  ...seed,
  partner: {
    ...seed.partner,
    keys: [
      ...(seed.partner?.keys ?? []).filter((k) => k.kid !== key.kid),
      { kid: key.kid, alg: key.alg, publicKey: format === "jwk" ? key.publicJwk : key.publicKeyPem }
    ]
  }
})
