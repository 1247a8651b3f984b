/**
 * 3. Token exchange.
 * - Single flight: with every exchange answered after 200 ms, 1,000 concurrent `accessToken` callers for one user,
 *   then 100 users × 10 callers, each on a fresh client (empty cache); the fake's ledger counts the exchanges.
 * - Signing CPU per partner JWT with jose, key imported once: ES256 and RS256 (the claims the library signs).
 * - Client CPU per whole exchange (signing, the POST, decoding, caching), sequential, one new user each (the
 *   users made before the round is measured): both clients built first, then 5 rounds alternating which algorithm
 *   goes first; medians.
 */
import { TokenExchange } from "@effect-zapier/core"
import type { PartnerKey } from "@effect-zapier/testing"
import { FakeZapier } from "@effect-zapier/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Jose from "jose"
import * as Child from "./child.js"
import * as Clients from "./clients.js"
import { median } from "./overhead.js"
import * as Seed from "./seed.js"

export interface Options {
  /** JWTs signed per algorithm (RS256 signs a quarter as many). */
  readonly signatures: number
  /** Sequential exchanges per algorithm for the CPU figure. */
  readonly exchanges: number
}

export interface Scenario {
  readonly callers: number
  readonly users: number
  readonly exchanges: number
}

export interface Result {
  readonly scenarios: ReadonlyArray<Scenario>
  readonly es256SignMicros: number
  readonly rs256SignMicros: number
  readonly es256ExchangeCpuMicros: number
  readonly rs256ExchangeCpuMicros: number
}

/** Rounds of the exchange CPU figure, each algorithm `exchanges / exchangeRounds` sequential exchanges per round. */
const exchangeRounds = 5

/** CPU µs per call of `once`, over `n` sequential calls (after `n / 10` warm-up calls). */
const cpuPer = <E, R>(n: number, once: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < Math.ceil(n / 10); i++) yield* once(-1 - i)
    yield* Effect.sync(() => globalThis.gc?.())
    const cpu = process.cpuUsage()
    for (let i = 0; i < n; i++) yield* once(i)
    const used = process.cpuUsage(cpu)
    return (used.user + used.system) / n
  })

/** Signs the partner JWT the way the library does: header alg/kid/typ; iss, aud, sub, org_id, iat, nbf, exp, jti. */
const signing = (key: PartnerKey.PartnerKey) =>
  Effect.map(
    Effect.promise(() => Jose.importPKCS8(Redacted.value(key.privateKeyPem), key.alg)),
    (imported) => (i: number) =>
      Effect.promise(() => {
        const now = Math.floor(Date.now() / 1000)
        return new Jose.SignJWT({ org_id: "bench" })
          .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
          .setIssuer(FakeZapier.sample.issuer)
          .setAudience("connect.zapier.com")
          .setSubject(`u-${i}`)
          .setIssuedAt(now)
          .setNotBefore(now)
          .setExpirationTime(now + 300)
          .setJti(globalThis.crypto.randomUUID())
          .sign(imported)
      })
  )

export const run = (options: Options, keys: Clients.Keys) =>
  Effect.gen(function* () {
    const server = yield* Child.start({
      users: 0,
      keys: Clients.publicKeys(keys),
      timeScale: 1,
      clockOrigin: 0,
      accessTokenTtlSeconds: 3600
    })

    yield* server.tokenDelay(200)
    const scenarios: Array<Scenario> = []
    for (const { callers, users } of [
      { callers: 1_000, users: 1 },
      { callers: 1_000, users: 100 }
    ]) {
      yield* server.reset
      yield* Effect.gen(function* () {
        const tokens = yield* TokenExchange.TokenExchange
        yield* Effect.forEach(Array.from({ length: callers }), (_, i) => tokens.accessToken(Seed.user(i % users)), {
          concurrency: "unbounded",
          discard: true
        })
      }).pipe(Effect.provide(Clients.zapier(server, keys.es256)))
      scenarios.push({ callers, users, exchanges: (yield* server.summary).accessExchanges })
    }
    yield* server.clearFaults

    const es256SignMicros = yield* cpuPer(options.signatures, yield* signing(keys.es256))
    const rs256SignMicros = yield* cpuPer(Math.ceil(options.signatures / 4), yield* signing(keys.rs256))

    // Both clients are built first and measured in interleaved rounds (the first alternating), medians: measured
    // one after the other, the first algorithm also paid the code's warm-up (JIT), which made ES256 look as costly
    // as RS256.
    const esTokens = Context.get(yield* Layer.build(Clients.zapier(server, keys.es256)), TokenExchange.TokenExchange)
    const rsTokens = Context.get(yield* Layer.build(Clients.zapier(server, keys.rs256)), TokenExchange.TokenExchange)
    let nextUser = 110_000
    // The round's users (its warm-up's and its measured ones) are made before it is measured: an `EndUser` is the
    // exchange's input, validated by its Schema class when made, which is no part of the exchange.
    const round = (tokens: TokenExchange.Service) => {
      const n = Math.ceil(options.exchanges / exchangeRounds)
      const users = Array.from({ length: n + Math.ceil(n / 10) }, () => Seed.user(nextUser++))
      return cpuPer(n, (i) => tokens.accessToken(users[i < 0 ? n - 1 - i : i]!))
    }
    const es: Array<number> = []
    const rs: Array<number> = []
    for (let r = 0; r < exchangeRounds; r++) {
      if (r % 2 === 0) {
        es.push(yield* round(esTokens))
        rs.push(yield* round(rsTokens))
      } else {
        rs.push(yield* round(rsTokens))
        es.push(yield* round(esTokens))
      }
    }
    const es256ExchangeCpuMicros = median(es)
    const rs256ExchangeCpuMicros = median(rs)

    return {
      scenarios,
      es256SignMicros,
      rs256SignMicros,
      es256ExchangeCpuMicros,
      rs256ExchangeCpuMicros
    } satisfies Result
  }).pipe(Effect.scoped)
