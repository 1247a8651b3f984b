/**
 * 3. Token exchange.
 * - Single flight: with every exchange answered after 200 ms, 1,000 concurrent `accessToken` callers for one user,
 *   then 100 users × 10 callers, each on a fresh client (empty cache); the fake's ledger counts the exchanges.
 * - Signing CPU per partner JWT with jose, key imported once: ES256 and RS256 (the claims the library signs).
 * - Client CPU per whole exchange (signing, the POST, decoding, caching), sequential, one new user each (the
 *   users made before the round is measured): every client built first, then 5 rounds, each measuring every
 *   client in turn, the order rotating from round to round; medians.
 * - For reference, in the same rounds: the same exchange hand-written on the bare Effect `HttpClient` (same
 *   `NodeHttpClient.layerUndici`): the same claims signed with `node:crypto` on the same key (imported once), the
 *   same form body (`bodyUrlParams`), one POST, `response.json`, nothing cached, retried, timed out or traced.
 *   This separates what the exchange costs on this machine from what the library adds (as the overhead scenario
 *   does for a GET).
 */
import * as NodeCrypto from "node:crypto"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import type { Domain } from "@effect-zapier/core"
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
  /** The same exchange hand-written on the bare Effect HttpClient (no cache, retry, timeout or span), for reference. */
  readonly es256BareExchangeCpuMicros: number
  readonly rs256BareExchangeCpuMicros: number
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

/**
 * The exchange hand-written on the bare Effect `HttpClient`: the partner JWT the library signs (same header and
 * claims) signed with `node:crypto` on `key`, imported once; the library's form fields; one POST; the JSON answer
 * checked for an access token. A failure is a defect (the run stops): the reference must exchange as the library does.
 */
const bareExchange = (http: HttpClient.HttpClient, tokenUrl: string, key: PartnerKey.PartnerKey) => {
  const privateKey = NodeCrypto.createPrivateKey(Redacted.value(key.privateKeyPem))
  const signKey: NodeCrypto.SignKeyObjectInput =
    key.alg === "ES256" ? { key: privateKey, dsaEncoding: "ieee-p1363" } : { key: privateKey }
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: "JWT" })).toString("base64url")
  return (user: Domain.EndUser) =>
    Effect.suspend(() => {
      const iat = Math.floor(Date.now() / 1000)
      const claims = JSON.stringify({
        sub: user.userId,
        org_id: user.tenantId,
        iss: FakeZapier.sample.issuer,
        aud: "connect.zapier.com",
        iat,
        nbf: iat,
        exp: iat + 300,
        jti: globalThis.crypto.randomUUID()
      })
      const input = `${header}.${Buffer.from(claims).toString("base64url")}`
      const jwt = `${input}.${NodeCrypto.sign("sha256", Buffer.from(input), signKey).toString("base64url")}`
      const request = HttpClientRequest.post(tokenUrl).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          client_id: FakeZapier.sample.clientId,
          client_secret: FakeZapier.sample.clientSecret,
          subject_token: jwt,
          subject_token_type: "urn:ietf:params:oauth:token-type:external-jwt",
          requested_token_type: "urn:ietf:params:oauth:token-type:access-token",
          scope: "external action:run authentication connection:read zap zap:write"
        })
      )
      return http.execute(request).pipe(
        Effect.flatMap((response) => Effect.map(response.json, (body) => ({ status: response.status, body }))),
        Effect.scoped,
        Effect.flatMap(({ status, body }) =>
          status === 200 && typeof body === "object" && body !== null && "access_token" in body
            ? Effect.succeed(body.access_token)
            : Effect.dieMessage(`the bare exchange was refused (HTTP ${status})`)
        )
      )
    })
}

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

    // Every client is built first and measured in interleaved rounds (the order rotating), medians: measured one
    // after the other, the first algorithm also paid the code's warm-up (JIT), which made ES256 look as costly as
    // RS256.
    const esTokens = Context.get(yield* Layer.build(Clients.zapier(server, keys.es256)), TokenExchange.TokenExchange)
    const rsTokens = Context.get(yield* Layer.build(Clients.zapier(server, keys.rs256)), TokenExchange.TokenExchange)
    const http = Context.get(yield* Layer.build(NodeHttpClient.layerUndici), HttpClient.HttpClient)
    const esBare = bareExchange(http, server.tokenUrl, keys.es256)
    const rsBare = bareExchange(http, server.tokenUrl, keys.rs256)
    let nextUser = 110_000
    // The round's users (its warm-up's and its measured ones) are made before it is measured: an `EndUser` is the
    // exchange's input, validated by its Schema class when made, which is no part of the exchange.
    const round = <E>(exchange: (user: Domain.EndUser) => Effect.Effect<unknown, E>) => {
      const n = Math.ceil(options.exchanges / exchangeRounds)
      const users = Array.from({ length: n + Math.ceil(n / 10) }, () => Seed.user(nextUser++))
      return cpuPer(n, (i) => exchange(users[i < 0 ? n - 1 - i : i]!))
    }
    // Each round measures the four clients in turn, the order rotating from round to round: the library's ES256
    // and RS256, then the bare ones of the same algorithms.
    const clients = [
      () => round((user) => esTokens.accessToken(user)),
      () => round((user) => rsTokens.accessToken(user)),
      () => round(esBare),
      () => round(rsBare)
    ]
    const figures: [Array<number>, Array<number>, Array<number>, Array<number>] = [[], [], [], []]
    for (let r = 0; r < exchangeRounds; r++) {
      for (let k = 0; k < clients.length; k++) {
        const i = (r + k) % clients.length
        figures[i]!.push(yield* clients[i]!())
      }
    }
    const [es, rs, esB, rsB] = figures
    const es256ExchangeCpuMicros = median(es)
    const rs256ExchangeCpuMicros = median(rs)
    const es256BareExchangeCpuMicros = median(esB)
    const rs256BareExchangeCpuMicros = median(rsB)

    return {
      scenarios,
      es256SignMicros,
      rs256SignMicros,
      es256ExchangeCpuMicros,
      rs256ExchangeCpuMicros,
      es256BareExchangeCpuMicros,
      rs256BareExchangeCpuMicros
    } satisfies Result
  }).pipe(Effect.scoped)
