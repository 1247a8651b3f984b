/**
 * 2. Per-request overhead, on the real clock: `ActionRuns.get` through the library (`ZapierHttp` over
 * `NodeHttpClient.layerUndici`) against raw `undici.request` (its own `Agent`, the same defaults layerUndici uses),
 * both reading the same finished run from the same fake server (a child process, so `process.cpuUsage()` here is
 * the client's CPU alone). The raw client sends the same bearer token and parses the JSON body; the library also
 * decodes it with Schema, looks the token up in its cache, and opens a span per call.
 *
 * For reference, a third client: the same GET hand-written on the bare Effect `HttpClient` (same
 * `NodeHttpClient.layerUndici`: bearer token, `acceptJson`, `response.json`), which separates what Effect's client
 * costs from what the library adds.
 *
 * Per concurrency: one warm-up round each, then `rounds` timed rounds rotating which client goes first; medians.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { ActionCatalog, ActionRuns, TokenExchange } from "@effect-zapier/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Agent, request } from "undici"
import * as Child from "./child.js"
import * as Clients from "./clients.js"
import * as Seed from "./seed.js"

export interface Options {
  readonly rounds: number
  readonly roundMillis: number
  readonly concurrencies: ReadonlyArray<number>
}

export interface Row {
  readonly concurrency: number
  readonly libraryReqPerSec: number
  readonly undiciReqPerSec: number
  readonly libraryCpuMicrosPerRequest: number
  readonly undiciCpuMicrosPerRequest: number
  /** Median latency of one request. */
  readonly libraryP50Ms: number
  readonly undiciP50Ms: number
  /** The same GET hand-written on the bare Effect HttpClient (same layerUndici), for reference. */
  readonly effectHttpReqPerSec: number
  readonly effectHttpCpuMicrosPerRequest: number
  readonly rounds: number
  /** Requests made in the timed rounds, and how many of them failed (both clients). */
  readonly requests: number
  readonly errors: number
}

interface Round {
  readonly requests: number
  readonly errors: number
  readonly reqPerSec: number
  readonly cpuMicrosPerRequest: number
  readonly p50Ms: number
}

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const measure = (latencies: ReadonlyArray<number>, errors: number, start: number, cpu: NodeJS.CpuUsage): Round => {
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  return {
    requests: latencies.length,
    errors,
    reqPerSec: latencies.length / seconds,
    cpuMicrosPerRequest: (used.user + used.system) / latencies.length,
    p50Ms: median(latencies)
  }
}

/** Runs `concurrency` fibers looping over `once` for `millis`, and measures them. */
const timedEffect = <E, R>(
  concurrency: number,
  millis: number,
  once: Effect.Effect<boolean, E, R>
): Effect.Effect<Round, E, R> =>
  Effect.gen(function* () {
    yield* Effect.sync(() => globalThis.gc?.())
    const latencies: Array<number> = []
    let errors = 0
    const cpu = process.cpuUsage()
    const start = performance.now()
    const deadline = start + millis
    const loop = Effect.gen(function* () {
      while (performance.now() < deadline) {
        const t = performance.now()
        const ok = yield* once
        latencies.push(performance.now() - t)
        if (!ok) errors++
      }
    })
    yield* Effect.forEach(Array.from({ length: concurrency }), () => loop, {
      concurrency: "unbounded",
      discard: true
    })
    return measure(latencies, errors, start, cpu)
  })

/** The same with plain promises (no Effect on the raw client's path). */
const timedPromise = (concurrency: number, millis: number, once: () => Promise<boolean>): Effect.Effect<Round> =>
  Effect.promise(async () => {
    globalThis.gc?.()
    const latencies: Array<number> = []
    let errors = 0
    const cpu = process.cpuUsage()
    const start = performance.now()
    const deadline = start + millis
    const loop = async () => {
      while (performance.now() < deadline) {
        const t = performance.now()
        const ok = await once().catch(() => false)
        latencies.push(performance.now() - t)
        if (!ok) errors++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, loop))
    return measure(latencies, errors, start, cpu)
  })

export const run = (options: Options, keys: Clients.Keys) =>
  Effect.gen(function* () {
    const server = yield* Child.start({
      users: 1,
      keys: Clients.publicKeys(keys),
      timeScale: 1,
      clockOrigin: 0,
      accessTokenTtlSeconds: 3600
    })
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent()),
      (a) => Effect.promise(() => a.close())
    )
    return yield* Effect.gen(function* () {
      const catalog = yield* ActionCatalog.ActionCatalog
      const runs = yield* ActionRuns.ActionRuns
      const tokens = yield* TokenExchange.TokenExchange
      const user = Seed.user(0)
      const action = yield* catalog.resolve(user, Seed.app, Seed.action, "WRITE")
      const runId = yield* runs.create(user, {
        action: action.id,
        connection: Seed.connectionOf(0),
        inputs: { text: "overhead" }
      })
      const token = Redacted.value((yield* tokens.accessToken(user)).value)
      const url = `${server.apiUrl}/v2/action-runs/${encodeURIComponent(runId)}/`
      const headers = { authorization: `Bearer ${token}`, accept: "application/json" }

      const library = Effect.map(Effect.either(runs.get(user, runId)), (r) => r._tag === "Right")
      const raw = async () => {
        const response = await request(url, { dispatcher: agent, headers })
        const body = (await response.body.json()) as { readonly data?: { readonly status?: unknown } }
        return response.statusCode === 200 && body.data?.status === "success"
      }

      const http = yield* HttpClient.HttpClient
      const bare = http
        .execute(HttpClientRequest.get(url).pipe(HttpClientRequest.bearerToken(token), HttpClientRequest.acceptJson))
        .pipe(
          Effect.flatMap((response) =>
            Effect.map(
              response.json,
              (body) =>
                response.status === 200 &&
                typeof body === "object" &&
                body !== null &&
                "data" in body &&
                typeof body.data === "object" &&
                body.data !== null &&
                "status" in body.data &&
                body.data.status === "success"
            )
          ),
          Effect.scoped,
          Effect.orElseSucceed(() => false)
        )

      const rows: Array<Row> = []
      for (const c of options.concurrencies) {
        const clients = [
          (millis: number) => timedEffect(c, millis, library),
          (millis: number) => timedPromise(c, millis, raw),
          (millis: number) => timedEffect(c, millis, bare)
        ]
        for (const client of clients) yield* client(options.roundMillis / 2)
        const results: Array<Array<Round>> = [[], [], []]
        for (let r = 0; r < options.rounds; r++) {
          for (let k = 0; k < clients.length; k++) {
            const i = (r + k) % clients.length
            results[i]!.push(yield* clients[i]!(options.roundMillis))
          }
        }
        const [lib, und, eff] = results as [Array<Round>, Array<Round>, Array<Round>]
        const all = [...lib, ...und, ...eff]
        rows.push({
          concurrency: c,
          libraryReqPerSec: median(lib.map((x) => x.reqPerSec)),
          undiciReqPerSec: median(und.map((x) => x.reqPerSec)),
          libraryCpuMicrosPerRequest: median(lib.map((x) => x.cpuMicrosPerRequest)),
          undiciCpuMicrosPerRequest: median(und.map((x) => x.cpuMicrosPerRequest)),
          libraryP50Ms: median(lib.map((x) => x.p50Ms)),
          undiciP50Ms: median(und.map((x) => x.p50Ms)),
          effectHttpReqPerSec: median(eff.map((x) => x.reqPerSec)),
          effectHttpCpuMicrosPerRequest: median(eff.map((x) => x.cpuMicrosPerRequest)),
          rounds: options.rounds,
          requests: all.reduce((n, x) => n + x.requests, 0),
          errors: all.reduce((n, x) => n + x.errors, 0)
        })
      }
      return rows
    }).pipe(Effect.provide(Clients.zapier(server, keys.es256)), Effect.provide(NodeHttpClient.layerUndici))
  }).pipe(Effect.scoped)
