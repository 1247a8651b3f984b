/**
 * The chaos property of docs/targets.md (the fault matrix): fast-check generates fault plans (rows of the matrix, applied per
 * request ordinal and per endpoint) and runs each against the live client (token cache, retries, rate limiter,
 * polling) talking to a scripted Zapier over the wire protocol, on a virtual clock. Invariants, from the fake's
 * ledger and the captured logs and spans:
 *   1. runs per logical create ≤ 1;
 *   2. every operation ends by its deadline;
 *   3. every failure is one of core's tagged errors (no defect, no interruption);
 *   4. exchanges per user ≤ token generations + revocations + exchanges whose answer a fault swallowed, where a
 *      generation is the user's first token or one exchanged once the last token delivered had reached its refresh
 *      point (so the bound follows the virtual time elapsed, ~50 minutes a plan, and the plan's token lifetime);
 *      and every exchange has one of those reasons (a needless one fails, wherever the others leave room);
 *   5. requests per minute within the limit (no 429 the plan did not inject);
 *   6. no canary (client secret, key, JWTs, access tokens) in any log line, error, `Cause.pretty` or span.
 *
 * Scale: 40 plans × 20 users × 50 runs each (1,000 logical create-and-await per plan, ~3,000 requests and
 * ~50 minutes of virtual time, tokens of 4 to 60 minutes refreshed along the way). Fewer, larger plans than the
 * former 200 × 5 runs, whose faults fired on 0.7 % of the API requests and 2 % of the exchanges (~500 faults a
 * run): these fire on ~1 % and ~6 % (~1,400-1,500 a run); two census plans put every fault kind on every
 * endpoint at ordinals every plan reaches, and the test counts which kinds fired on which endpoint and fails if
 * one never did.
 */

import { assert, describe, it } from "@effect/vitest"
import { ActionRuns, ConnectionStore, Domain, EmbeddedActions } from "@effect-zapier/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import fc from "fast-check"
import * as Jose from "jose"
import { ZapierHttp } from "../src/index.js"
import {
  type Answer,
  CLIENT_SECRET,
  captureSpans,
  generateKeys,
  leaks,
  maxInAnyWindow,
  options,
  plainJson,
  type Recorded,
  runVirtual,
  scriptedClient
} from "./kit.js"

const keys = await generateKeys("ES256")
const pemCanaries = (() => {
  const body = keys.pem
    .split("\n")
    .filter((l) => !l.startsWith("-----"))
    .join("")
  return [body.slice(0, 40), body.slice(-40)]
})()

const NOW = Date.parse("2026-03-01T12:00:00Z")
const USERS = 20
const RUNS_PER_USER = 50
const PLANS = 40
const RATE = 60 // the fake's limit per minute, as Zapier's
/**
 * The `expires_in` a plan's Zapier gives its access tokens (seconds): an hour (Zapier's SDK assumes one), which a
 * plan outlives only when faults slow it down, and shorter ones that every plan outlives many times (the
 * shortest refreshed at half its life).
 */
const LIFETIMES = [3600, 1800, 600, 240] as const
/** Virtual time a plan runs for, about (~3,000 requests at 60 a minute). */
const PLAN_MINUTES = 50
/**
 * From when a token may be replaced, after its exchange started: TokenExchange refreshes once less than
 * `min(300 s, 50 % of expires_in)` is left, counted from when the exchange's request started.
 */
const refreshAfter = (expiresIn: number) => expiresIn * 1000 - Math.min(300_000, (expiresIn * 1000) / 2)
/**
 * Slack on that point. When the exchange started is read from its partner JWT's `iat` (whole seconds, stamped
 * from the same clock as the exchange's start, after it); the slack covers the rounding and a timer batch of the
 * virtual clock firing between the two reads.
 */
const REFRESH_SLACK = 5_000

type Endpoint = "token" | "create" | "get"

type Fault =
  | { readonly _tag: "refused" | "reset-before" | "reset-after" | "hang-before" | "hang-after" }
  | { readonly _tag: "status"; readonly status: 500 | 502 | 503 | 504; readonly afterCommit: boolean }
  | { readonly _tag: "503-hint"; readonly seconds: number }
  | { readonly _tag: "429"; readonly hint: "delta" | "date" | "none" | "huge"; readonly seconds: number }
  | { readonly _tag: "revoke" }
  | { readonly _tag: "body"; readonly body: "malformed" | "html" | "empty" | "truncated" }
  | { readonly _tag: "delay"; readonly millis: number }
  | { readonly _tag: "drift" }
  | { readonly _tag: "404" }

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.constantFrom<Fault>(
    { _tag: "refused" },
    { _tag: "reset-before" },
    { _tag: "reset-after" },
    { _tag: "hang-before" },
    { _tag: "hang-after" },
    { _tag: "revoke" },
    { _tag: "drift" },
    { _tag: "404" }
  ),
  fc.record({
    _tag: fc.constant("status" as const),
    status: fc.constantFrom(500 as const, 502 as const, 503 as const, 504 as const),
    afterCommit: fc.boolean()
  }),
  fc.record({ _tag: fc.constant("503-hint" as const), seconds: fc.integer({ min: 0, max: 30 }) }),
  fc.record({
    _tag: fc.constant("429" as const),
    hint: fc.constantFrom("delta" as const, "date" as const, "none" as const, "huge" as const),
    seconds: fc.integer({ min: 0, max: 45 })
  }),
  fc.record({
    _tag: fc.constant("body" as const),
    body: fc.constantFrom("malformed" as const, "html" as const, "empty" as const, "truncated" as const)
  }),
  fc.record({ _tag: fc.constant("delay" as const), millis: fc.integer({ min: 1, max: 5_000 }) })
)

/** A fault's row of the matrix, for the coverage count (`429` and `body` by variant, `status` by before/after). */
const kindOf = (fault: Fault): string => {
  switch (fault._tag) {
    case "status":
      return fault.afterCommit ? "status-after" : "status-before"
    case "429":
      return `429-${fault.hint}`
    case "body":
      return `body-${fault.body}`
    default:
      return fault._tag
  }
}

/** One fault of every kind (20 kinds). */
const everyKind: ReadonlyArray<Fault> = [
  { _tag: "refused" },
  { _tag: "reset-before" },
  { _tag: "reset-after" },
  { _tag: "hang-before" },
  { _tag: "hang-after" },
  { _tag: "revoke" },
  { _tag: "drift" },
  { _tag: "404" },
  { _tag: "status", status: 502, afterCommit: false },
  { _tag: "status", status: 500, afterCommit: true },
  { _tag: "503-hint", seconds: 7 },
  { _tag: "429", hint: "delta", seconds: 20 },
  { _tag: "429", hint: "date", seconds: 30 },
  { _tag: "429", hint: "none", seconds: 0 },
  { _tag: "429", hint: "huge", seconds: 0 },
  { _tag: "body", body: "malformed" },
  { _tag: "body", body: "html" },
  { _tag: "body", body: "empty" },
  { _tag: "body", body: "truncated" },
  { _tag: "delay", millis: 2_500 }
]

const endpoints: ReadonlyArray<Endpoint> = ["token", "create", "get"]

interface Plan {
  /** The tokens' `expires_in`, seconds. */
  readonly lifetime: number
  readonly faults: ReadonlyMap<string, Fault>
}

/** About how many exchanges a plan makes: every user's first, then one per refresh. */
const exchangesFor = (lifetime: number) => USERS * (1 + Math.ceil((PLAN_MINUTES * 60_000) / refreshAfter(lifetime)))

/**
 * Faults on `endpoint` by ordinal (the n-th request to that endpoint, from 0), up to `maxRows` of them among the
 * first `ordinals` requests, about as many requests as a plan sends there: ~1 % of the API requests, ~6 % of the
 * token requests (there are few of those).
 */
const rowsArb = (endpoint: Endpoint, ordinals: number, maxRows: number) =>
  fc
    .array(fc.record({ ordinal: fc.nat({ max: ordinals - 1 }), fault: faultArb }), {
      maxLength: maxRows,
      size: "max"
    })
    .map((rows) => rows.map((r) => [`${endpoint}:${r.ordinal}`, r.fault] as const))

const OPS = USERS * RUNS_PER_USER

const planArb: fc.Arbitrary<Plan> = fc.constantFrom(...LIFETIMES).chain((lifetime) => {
  const exchanges = exchangesFor(lifetime)
  return fc
    .tuple(
      rowsArb("token", exchanges, Math.max(6, Math.round(exchanges * 0.15))),
      rowsArb("create", OPS, 20),
      rowsArb("get", 2 * OPS, 40)
    )
    .map(([token, create, get]) => ({ lifetime, faults: new Map([...token, ...create, ...get]) }))
})

/**
 * The census plans: every kind on every endpoint, at ordinals every plan reaches (each user's first exchange;
 * the first creates and GETs of a thousand runs), half the token kinds in each plan.
 */
const census: ReadonlyArray<Plan> = [0, 1].map((half) => ({
  lifetime: LIFETIMES[half + 1]!,
  faults: new Map([
    ...everyKind.slice(half * 10, half * 10 + 10).map((fault, i) => [`token:${2 * i}`, fault] as const),
    ...everyKind.map((fault, i) => [`create:${10 + 30 * i}`, fault] as const),
    ...everyKind.map((fault, i) => [`get:${20 + 60 * i}`, fault] as const)
  ])
}))

/** Which fault kinds fired on which endpoint (`endpoint:kind`), over every plan run. */
const fired = new Map<string, number>()

/** A body whose stream breaks after a few bytes (a truncated answer). */
const truncated = (status = 200) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"data": {"ty'))
        controller.error(new Error("terminated"))
      }
    }),
    { status, headers: { "content-type": "application/json" } }
  )

/** Why the scripted Zapier issued a user a token, judged when the request arrived. */
type Reason = "first" | "refresh" | "after-revocation" | "after-swallowed" | "unexplained"

/** One user's tokens in the ledger. */
interface UserTokens {
  issued: number
  readonly reasons: Record<Reason, number>
  /** When the unexplained exchanges arrived, with the age then of the last token delivered. */
  readonly unexplained: Array<string>
  /** The last token issued (`started`: when its exchange started), and whether a fault swallowed its answer. */
  last: { readonly token: string; readonly started: number; swallowed: boolean } | undefined
  /** The last token whose answer reached the client. */
  delivered: { readonly token: string; readonly started: number } | undefined
}

/** The scripted Zapier of one plan, with its ledger. */
const chaosZapier = (plan: Plan) => {
  const counts: Record<Endpoint, number> = { token: 0, create: 0, get: 0 }
  const tokens = new Map<string, { readonly user: string; revoked: boolean }>()
  const users = new Map<string, UserTokens>()
  const revocations = new Map<string, number>()
  const swallowedExchanges = new Map<string, number>()
  const runs = new Map<string, { readonly key: string; readonly finishAt: number; readonly user: string }>()
  const runsByKey = new Map<string, number>()
  const apiTimes: Array<number> = []
  let windowStart = 0 // apiTimes[windowStart..] arrived within the last minute (arrivals are in clock order)
  const injected429 = { count: 0 }
  const unexpected429 = { count: 0 }
  let seq = 0
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)
  const tokensOf = (user: string): UserTokens => {
    let entry = users.get(user)
    if (entry === undefined) {
      entry = {
        issued: 0,
        reasons: { first: 0, refresh: 0, "after-revocation": 0, "after-swallowed": 0, unexplained: 0 },
        unexplained: [],
        last: undefined,
        delivered: undefined
      }
      users.set(user, entry)
    }
    return entry
  }
  /** Why a token issued to `user` at `at` would be one, before this request changes anything. */
  const reasonOf = (entry: UserTokens, at: number): Reason => {
    if (entry.last !== undefined && !entry.last.swallowed) entry.delivered = entry.last
    if (entry.last?.swallowed === true) return "after-swallowed"
    const delivered = entry.delivered
    if (delivered === undefined) return "first"
    if (tokens.get(delivered.token)?.revoked === true) return "after-revocation"
    if (at >= delivered.started + refreshAfter(plan.lifetime) - REFRESH_SLACK) return "refresh"
    return "unexplained"
  }

  const scripted = scriptedClient((request): Answer | Effect.Effect<Answer> => {
    const endpoint: Endpoint = request.path === "/oauth/token" ? "token" : request.method === "POST" ? "create" : "get"
    const fault = plan.faults.get(`${endpoint}:${counts[endpoint]++}`)
    if (fault !== undefined) bump(fired, `${endpoint}:${kindOf(fault)}`)
    const bearer = request.headers.authorization?.replace(/^Bearer /, "")
    // A token request's partner JWT names the user, and says when the exchange started (`iat`).
    const claims = endpoint === "token" ? Jose.decodeJwt(request.form.get("subject_token") ?? "") : undefined
    const owner = claims !== undefined ? String(claims.sub) : tokens.get(bearer ?? "")?.user
    const userTokens = endpoint === "token" ? tokensOf(owner ?? "") : undefined
    const reason = userTokens !== undefined ? reasonOf(userTokens, request.at) : undefined

    // What Zapier does with the request, when it processes it.
    const process = (): Answer => {
      if (userTokens !== undefined && reason !== undefined) {
        const token = `access-token-canary-${owner}-${++seq}`
        tokens.set(token, { user: owner ?? "", revoked: false })
        userTokens.issued++
        userTokens.reasons[reason]++
        if (reason === "unexplained") {
          const age = request.at - (userTokens.delivered?.started ?? request.at)
          userTokens.unexplained.push(`at +${request.at - NOW} ms, the last token delivered ${age} ms old`)
        }
        userTokens.last = { token, started: (claims?.iat ?? 0) * 1000, swallowed: false }
        return plainJson({ access_token: token, expires_in: plan.lifetime })
      }
      apiTimes.push(request.at)
      while (apiTimes[windowStart]! <= request.at - 60_000) windowStart++
      if (apiTimes.length - windowStart > RATE) {
        apiTimes.pop()
        unexpected429.count++
        return plainJson({ errors: [{ status: 429, code: "throttled" }] }, 429, { "retry-after": "60" })
      }
      const token = tokens.get(bearer ?? "")
      if (token === undefined || token.revoked) return plainJson({ errors: [{ status: 401, code: "revoked" }] }, 401)
      if (endpoint === "create") {
        const body = request.json as { readonly input?: { readonly key?: string } } | undefined
        const key = body?.input?.key ?? "?"
        const id = `run-${++seq}`
        runs.set(id, { key, finishAt: request.at + ((seq * 7_919) % 20_000), user: token.user })
        bump(runsByKey, key)
        return plainJson({ data: { type: "run", id } })
      }
      const id = request.path.split("/")[3] ?? ""
      const run = runs.get(id)
      if (run === undefined || run.user !== token.user)
        return plainJson({ errors: [{ status: 404, code: "not_found" }] }, 404)
      const done = request.at >= run.finishAt
      return plainJson({
        data: { type: "run", status: done ? "success" : "waiting", results: done ? [{ ok: 1 }] : [], errors: [] }
      })
    }
    const swallowed = () => {
      if (userTokens?.last !== undefined) {
        userTokens.last.swallowed = true
        bump(swallowedExchanges, owner ?? "")
      }
    }
    if (fault === undefined) return process()
    switch (fault._tag) {
      case "refused":
        return "refused"
      case "reset-before":
        return "reset"
      case "reset-after":
        process()
        swallowed()
        return "reset"
      case "hang-before":
        return Effect.never
      case "hang-after":
        process()
        swallowed()
        return Effect.never
      case "status":
        if (fault.afterCommit) {
          process()
          swallowed()
        }
        return plainJson({ errors: [{ status: fault.status, code: "error" }] }, fault.status)
      case "503-hint":
        return plainJson({ errors: [] }, 503, { "retry-after": String(fault.seconds) })
      case "429": {
        injected429.count++
        const headers: Record<string, string> =
          fault.hint === "delta"
            ? { "retry-after": String(fault.seconds) }
            : fault.hint === "date"
              ? { "retry-after": new Date(request.at + fault.seconds * 1000).toUTCString() }
              : fault.hint === "huge"
                ? { "retry-after": "86400" }
                : {}
        return plainJson({ errors: [{ status: 429, code: "throttled" }] }, 429, headers)
      }
      case "revoke":
        for (const t of tokens.values()) if (t.user === owner) t.revoked = true
        if (owner !== undefined) bump(revocations, owner)
        return process()
      case "body": {
        process()
        swallowed()
        return fault.body === "truncated"
          ? truncated()
          : new Response(
              fault.body === "malformed"
                ? '{"data": {"type": "run", "status": '
                : fault.body === "html"
                  ? "<html>oops</html>"
                  : "",
              { status: 200, headers: { "content-type": fault.body === "html" ? "text/html" : "application/json" } }
            )
      }
      case "delay":
        return Effect.as(Effect.sleep(fault.millis), process())
      case "drift":
        return endpoint === "get"
          ? plainJson({ data: { type: "run", status: "paused", results: [], errors: [], eta: 3 }, extra: true })
          : process()
      case "404":
        return endpoint === "get" ? plainJson({ errors: [{ status: 404, code: "not_found" }] }, 404) : process()
    }
  })
  return {
    scripted,
    ledger: { users, revocations, swallowedExchanges, runsByKey, apiTimes, injected429, unexpected429 }
  }
}

const coreErrors = new Set([
  "TokenExchangeFailed",
  "Unauthorized",
  "RateLimited",
  "ZapierUnavailable",
  "InvalidResponse",
  "BadRequest",
  "NotFound",
  "RunOutcomeUnknown",
  "ActionRunFailed",
  "PollTimeout"
])

/** The longest one create-and-await may take: the slot waits, the attempts and hints, then the await's deadline. */
const DEADLINE = 2 * 60_000 + 3 * (30_000 + 60_000) + 3 * 60_000

const runPlan = (plan: Plan) =>
  Effect.gen(function* () {
    const { scripted, ledger } = chaosZapier(plan)
    const spans = captureSpans()
    const lines: Array<string> = []
    const logger = Logger.make<unknown, void>(({ annotations, cause, message }) => {
      lines.push(
        `${String(message)} ${[...HashMap.values(annotations)].map(String).join(" ")} ${Cause.isEmpty(cause) ? "" : Cause.pretty(cause)}`
      )
    })
    const layer = EmbeddedActions.layer.pipe(
      Layer.provide(ConnectionStore.layerMemory),
      Layer.provideMerge(ZapierHttp.layer(options(keys)).pipe(Layer.provide(scripted.layer))),
      Layer.provide(Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))),
      Layer.provide(spans.layer)
    )
    const users = Array.from({ length: USERS }, (_, i) => Domain.EndUser.make({ userId: `u${i}`, tenantId: "t" }))
    const ops: Array<{ readonly exit: Exit.Exit<unknown, unknown>; readonly took: number }> = []
    const { exit } = yield* runVirtual(
      Effect.gen(function* () {
        const runs = yield* ActionRuns.ActionRuns
        const ea = yield* EmbeddedActions.EmbeddedActions
        yield* Effect.forEach(
          users,
          (user) =>
            Effect.forEach(
              Array.from({ length: RUNS_PER_USER }, (_, n) => `${user.userId}-${n}`),
              (key) =>
                Effect.gen(function* () {
                  const start = yield* Clock.currentTimeMillis
                  const op = Effect.flatMap(
                    runs.create(user, { action: Domain.ActionId.make("uag:chaos"), connection: null, inputs: { key } }),
                    (runId) => ea.await(user, runId, { timeout: "3 minutes" })
                  )
                  const exit = yield* Effect.exit(op)
                  ops.push({ exit, took: (yield* Clock.currentTimeMillis) - start })
                }),
              { discard: true }
            ),
          { concurrency: "unbounded", discard: true }
        )
      }).pipe(Effect.provide(layer), Effect.withLogSpan("chaos")),
      { start: NOW, quantum: 5 }
    )
    return { exit, ops, ledger, lines, spans: spans.spans, sent: scripted.requests }
  })

const sentSecrets = (requests: ReadonlyArray<Recorded>): ReadonlyArray<string> =>
  requests.flatMap((r) => {
    const out: Array<string> = []
    const bearer = r.headers.authorization?.replace(/^Bearer /, "")
    if (bearer !== undefined) out.push(bearer)
    const jwt = r.form.get("subject_token")
    if (jwt !== null) out.push(jwt, jwt.split(".")[2] ?? "")
    return out
  })

/** Every text a plan's outcome can be seen through, each distinct one once (span attributes repeat a lot). */
const sinksOf = (result: Effect.Effect.Success<ReturnType<typeof runPlan>>): ReadonlyArray<string> => {
  const sinks = new Set<string>(result.lines)
  for (const { exit } of result.ops) {
    if (Exit.isSuccess(exit)) continue
    sinks.add(JSON.stringify(Option.getOrUndefined(Cause.failureOption(exit.cause))) ?? "")
    sinks.add(Cause.pretty(exit.cause))
  }
  for (const span of result.spans) {
    sinks.add(span.name)
    for (const [k, v] of span.attributes) sinks.add(`${k}=${String(v)}`)
  }
  return [...sinks]
}

const totals = { plans: 0, ops: 0, failed: 0, requests: 0, exchanges: 0, refreshes: 0, faults: 0 }

describe("chaos (fast-check fault plans, virtual clock)", () => {
  it.live(
    `${PLANS} plans × ${USERS} users × ${RUNS_PER_USER} runs: the six invariants hold, every fault kind fired on every endpoint`,
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(planArb, async (plan) => {
            const firedBefore = [...fired.values()].reduce((a, b) => a + b, 0)
            const result = await Effect.runPromise(runPlan(plan))
            assert.isTrue(Exit.isSuccess(result.exit), "the workload finished")
            const { ledger, ops } = result
            assert.strictEqual(ops.length, OPS)
            // 1. At most one run per logical create.
            for (const [key, n] of ledger.runsByKey) assert.isAtMost(n, 1, `runs of ${key}`)
            // 2. Every operation ended by its deadline.
            for (const op of ops) assert.isAtMost(op.took, DEADLINE)
            // 3. Every failure is a tagged core error.
            for (const { exit } of ops) {
              if (Exit.isSuccess(exit)) continue
              assert.isFalse(Cause.isDie(exit.cause), Cause.pretty(exit.cause))
              assert.isFalse(Cause.isInterrupted(exit.cause))
              const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
              const tag =
                typeof failure === "object" && failure !== null && "_tag" in failure ? String(failure._tag) : ""
              assert.isTrue(coreErrors.has(tag), `not a core error: ${tag}`)
            }
            // 4. Exchanges per user ≤ generations (the first token, and one per token that reached its refresh
            // window: the bound follows the virtual time elapsed) + revocations + swallowed answers; and no
            // exchange without one of these reasons.
            for (const [user, tokens] of ledger.users) {
              const generations = tokens.reasons.first + tokens.reasons.refresh
              const bound =
                generations + (ledger.revocations.get(user) ?? 0) + (ledger.swallowedExchanges.get(user) ?? 0)
              assert.isAtMost(tokens.issued, bound, `exchanges of ${user}`)
              assert.deepStrictEqual(tokens.unexplained, [], `exchanges of ${user} with no reason`)
            }
            // 5. Within the rate limit: no 429 the plan did not inject, never more than the limit in a minute.
            assert.strictEqual(ledger.unexpected429.count, 0)
            assert.isAtMost(maxInAnyWindow(ledger.apiTimes, 60_000), RATE)
            // 6. No canary anywhere.
            const canaries = [
              ...new Set(sentSecrets(result.sent)),
              CLIENT_SECRET,
              ...pemCanaries,
              "access-token-canary"
            ]
            assert.deepStrictEqual(leaks(sinksOf(result), canaries), [])
            totals.plans++
            totals.ops += ops.length
            totals.failed += ops.filter(({ exit }) => Exit.isFailure(exit)).length
            totals.requests += result.sent.length
            for (const tokens of ledger.users.values()) {
              totals.exchanges += tokens.issued
              totals.refreshes += tokens.reasons.refresh
            }
            totals.faults += [...fired.values()].reduce((a, b) => a + b, 0) - firedBefore
          }),
          { numRuns: PLANS, examples: census.map((plan) => [plan] as [Plan]) }
        )
      ).pipe(
        Effect.andThen(() => {
          // Every row of the matrix reached on every endpoint (the census plans put each one where it fires).
          const missing = endpoints.flatMap((endpoint) =>
            everyKind.map((fault) => `${endpoint}:${kindOf(fault)}`).filter((cell) => !fired.has(cell))
          )
          assert.deepStrictEqual(missing, [], "fault kinds that never fired")
          assert.isAbove(totals.refreshes, 0, "tokens refreshed (the census plans outlive theirs)")
          const on = (endpoint: Endpoint) =>
            [...fired].filter(([cell]) => cell.startsWith(`${endpoint}:`)).reduce((n, [, count]) => n + count, 0)
          console.log(
            `chaos: ${totals.plans} plans, ${totals.ops} runs (${totals.failed} failed), ${totals.requests} requests,` +
              ` ${totals.exchanges} exchanges (${totals.refreshes} refreshes); ${totals.faults} faults fired` +
              ` (token ${on("token")}, create ${on("create")}, get ${on("get")}) in ${fired.size} kinds × endpoints`
          )
        })
      ),
    // Virtual time, but CPU-bound: ~45-55 s of CPU, 90-95 s of wall time on this 2-core machine at load 8-12 (the
    // former 200 × 5 runs took as much). This budget only ends a real hang.
    { timeout: 600_000 }
  )
})
