/**
 * The part of the model every request goes through, whatever its area: tokens (exchange, authentication, partner
 * keys) and the fault plan, the rate limit and the ledger.
 *
 * @internal
 */
import { Domain } from "@effect-zapier/core"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { InvalidControl } from "../seedSchema.js"
import { checkFaultRule, checkRateLimit } from "../seedSchema.js"
import type * as FZ from "../types.js"
import type { AfterFault, Gate, RawAnswer, RequestInfo } from "./failures.js"
import { ApiFailure, oauth } from "./failures.js"
import { JtiRegistry } from "./jtis.js"
import type { AccessTokenRecord, Kit, State } from "./state.js"
import { appendLedger, emptyLedger, provision, randomToken, sameUser } from "./state.js"

export interface Issued {
  readonly token: string
  readonly expiresIn: number
  readonly scope: string
  readonly issuedAt: number
}
const rawAnswer = (f: Extract<FZ.Fault, { readonly _tag: "Respond" }>): RawAnswer => ({
  status: f.status,
  body: f.body,
  contentType: f.contentType ?? "application/json",
  headers: f.headers ?? {}
})

/**
 * The rate-limit bucket of an endpoint: the API's endpoints share the per-minute limit (the `/v2` API, the Trigger
 * Inbox, connection webhooks); the long-poll read has its own (Zapier's `actions_api_results`); the rest (token
 * exchanges, Connect UI, the callback key set) is not limited.
 */
const bucketOf = (endpoint: string): "rateLimit" | "resultsRateLimit" | undefined =>
  endpoint === "GET /actions/v2/runs/{id}"
    ? "resultsRateLimit"
    : endpoint.includes(" /v2/") || endpoint.includes(" /inboxes") || endpoint.includes(" /connections/v1/")
      ? "rateLimit"
      : undefined

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/**
 * The control methods of tokens, faults and the ledger.
 * @internal
 */
export interface KernelControl {
  /** Revokes every access token of the user: the next request with one gets a 401. */
  readonly revokeTokens: (user: Domain.EndUser) => Effect.Effect<void>
  /** Registers another partner public key (key rotation). */
  readonly addPartnerKey: (key: FZ.PartnerKeySeed) => Effect.Effect<void>
  /**
   * Adds a fault rule (see {@link FZ.FaultRule}). A rule the model cannot use (a count or a status that is not a
   * whole number in its range, a duration that is negative, NaN, unreadable or infinite, an unknown fault) fails
   * with `InvalidControl` and is not added.
   */
  readonly injectFault: (rule: FZ.FaultRule) => Effect.Effect<void, InvalidControl>
  readonly clearFaults: Effect.Effect<void>
  /**
   * Sets (or, with `undefined`, removes) the rate limit per minute of the `/v2` requests and, counted apart, of the
   * long-poll reads (their own bucket). A limit that is not a whole number of at least 0 (NaN, negative, a fraction,
   * `Infinity`) fails with `InvalidControl` and changes nothing.
   */
  readonly setRateLimit: (perMinute: number | undefined) => Effect.Effect<void, InvalidControl>
  /** A snapshot of the ledger. */
  readonly ledger: Effect.Effect<FZ.Ledger>
  /** Empties the ledger (state is kept). */
  readonly resetLedger: Effect.Effect<void>
}

/** Tokens, the fault gate and the ledger over the state. */
export const make = (kit: Kit) => {
  const { settings, clock, now, state } = kit

  const jtis = new JtiRegistry()
  /** True (and `jti` remembered until `exp`, epoch seconds) unless it was used by a JWT that has not expired. */
  const useJti = (jti: string, exp: number) => Effect.flatMap(now, (t) => Effect.sync(() => jtis.use(jti, exp, t)))

  const exchangeAccess = (user: Domain.EndUser, scope: string | undefined) =>
    Effect.gen(function* () {
      const t = yield* now
      const token = yield* randomToken("zat_")
      const granted = scope ?? settings.scope
      const expiresIn = settings.accessTokenTtlSeconds
      yield* Ref.update(state, (s) =>
        appendLedger(
          {
            ...provision(s, user, t),
            accessTokens: HashMap.set(s.accessTokens, token, {
              user,
              expiresAt: t + expiresIn * 1000,
              scope: granted,
              revoked: false
            })
          },
          "exchanges",
          { at: t, user, kind: "access", expiresIn }
        )
      )
      return { token, expiresIn, scope: granted, issuedAt: t }
    })

  const findAccess = (token: string, t: number): Effect.Effect<AccessTokenRecord, string> =>
    Effect.flatMap(Ref.get(state), (s) => {
      const record = HashMap.get(s.accessTokens, token)
      if (Option.isNone(record)) return Effect.fail("Invalid token.")
      if (record.value.revoked) return Effect.fail("Token has been revoked.")
      if (t >= record.value.expiresAt) return Effect.fail("Token has expired.")
      return Effect.succeed(record.value)
    })

  const authenticate = (token: string) =>
    Effect.flatMap(now, (t) =>
      findAccess(token, t).pipe(
        Effect.map((r) => r.user),
        Effect.mapError(ApiFailure.authenticationFailed)
      )
    )

  /** A connect token for the user, bound to `resource` (`{connectUrl}/to/{app}`). */
  const connectFor = (user: Domain.EndUser, resource: string, scope: string | undefined) =>
    Effect.gen(function* () {
      const t = yield* now
      const prefix = `${settings.connectUrl}/to/`
      const rest = resource.startsWith(prefix) ? resource.slice(prefix.length) : ""
      if (rest.length === 0 || rest.includes("/") || rest.includes("?") || rest.includes("#")) {
        return yield* Effect.fail(
          oauth(400, "invalid_target", `The resource must be the Connect UI URL of an app: ${prefix}{app}.`)
        )
      }
      const app = decodeURIComponent(rest)
      const token = yield* randomToken("zct_")
      const expiresIn = Math.floor(settings.connectTokenTtlMillis / 1000)
      yield* Ref.update(state, (s) =>
        appendLedger(
          {
            ...provision(s, user, t),
            connectTokens: HashMap.set(s.connectTokens, token, {
              user,
              app,
              resource,
              expiresAt: t + settings.connectTokenTtlMillis,
              used: false
            })
          },
          "exchanges",
          { at: t, user, kind: "connect", app: Domain.AppId.make(app), expiresIn }
        )
      )
      return { token, expiresIn, scope: scope ?? "connection:write", issuedAt: t }
    })

  const exchangeConnect = (subjectToken: string, resource: string, scope: string | undefined) =>
    Effect.gen(function* () {
      const t = yield* now
      const subject = yield* findAccess(subjectToken, t).pipe(
        Effect.mapError((reason) => oauth(400, "invalid_grant", `The subject_token is not usable: ${reason}`))
      )
      return yield* connectFor(subject.user, resource, scope)
    })

  // --- gate -----------------------------------------------------------------------------------------------

  const gate = (info: RequestInfo): Effect.Effect<Gate> =>
    Effect.flatMap(now, (t) =>
      Ref.modify(state, (s): readonly [Gate, State] => {
        let fired: FZ.Fault | undefined
        const faults = s.faults.map((rs) => {
          const matches =
            (rs.rule.endpoint === undefined || rs.rule.endpoint === info.endpoint) &&
            (rs.rule.user === undefined || (info.user !== undefined && sameUser(rs.rule.user, info.user)))
          if (!matches) return rs
          const seen = rs.seen + 1
          if (fired === undefined && seen > (rs.rule.skip ?? 0) && rs.fired < (rs.rule.times ?? 1)) {
            fired = rs.rule.fault
            return { ...rs, seen, fired: rs.fired + 1 }
          }
          return { ...rs, seen }
        })
        let next: State = { ...s, faults }
        const f = fired as FZ.Fault | undefined
        if (f?._tag === "Status" && !f.afterCommit) {
          return [
            {
              _tag: "Fail",
              failure: ApiFailure.fromStatus(f.status, f.code, f.detail, f.retryAfter, f.retryAfterFormat),
              code: f.code
            },
            next
          ]
        }
        if (f?._tag === "Disconnect" && !f.afterCommit) return [{ _tag: "Drop" }, next]
        if (f?._tag === "Respond" && f.afterCommit === false) return [{ _tag: "Raw", answer: rawAnswer(f) }, next]
        const bucket = bucketOf(info.endpoint)
        const rate = bucket === undefined ? undefined : next[bucket]
        const perMinute = rate?.perMinute
        if (bucket !== undefined && rate !== undefined && perMinute !== undefined) {
          if (t < rate.cooldownUntil) {
            return [
              {
                _tag: "Fail",
                failure: ApiFailure.throttled(Math.ceil((rate.cooldownUntil - t) / 1000)),
                code: undefined
              },
              next
            ]
          }
          const windowMillis = settings.rateLimitWindowMillis
          const window = Chunk.filter(rate.window, (at) => at > t - windowMillis)
          if (Chunk.size(window) >= perMinute) {
            return [
              { _tag: "Fail", failure: ApiFailure.throttled(Math.ceil(windowMillis / 1000)), code: undefined },
              { ...next, [bucket]: { ...rate, window, cooldownUntil: t + windowMillis } }
            ]
          }
          next = { ...next, [bucket]: { ...rate, window: Chunk.append(window, t) } }
        }
        const after: AfterFault | undefined =
          f?._tag === "Status"
            ? {
                _tag: "Fail",
                failure: ApiFailure.fromStatus(f.status, f.code, f.detail, f.retryAfter, f.retryAfterFormat),
                code: f.code
              }
            : f?._tag === "Disconnect"
              ? { _tag: "Drop" }
              : f?._tag === "MalformedBody"
                ? { _tag: "Malformed" }
                : f?._tag === "Respond"
                  ? { _tag: "Raw", answer: rawAnswer(f) }
                  : undefined
        return [
          {
            _tag: "Proceed",
            delay: f?._tag === "Delay" ? Duration.decode(f.duration) : undefined,
            after
          },
          next
        ]
      })
    )

  const record = (entry: Omit<FZ.RequestEntry, "at">) =>
    Effect.flatMap(now, (t) => Ref.update(state, (s) => appendLedger(s, "requests", { at: t, ...entry })))

  const control: KernelControl = {
    revokeTokens: Effect.fn("FakeZapier.revokeTokens")(function* (user: Domain.EndUser) {
      yield* Ref.update(state, (s) => ({
        ...s,
        accessTokens: HashMap.map(s.accessTokens, (r) => (sameUser(r.user, user) ? { ...r, revoked: true } : r))
      }))
    }),
    addPartnerKey: Effect.fn("FakeZapier.addPartnerKey")(function* (key: FZ.PartnerKeySeed) {
      yield* Ref.update(state, (s) => ({
        ...s,
        partner: { ...s.partner, keys: [...s.partner.keys.filter((k) => k.kid !== key.kid), key] }
      }))
    }),
    injectFault: Effect.fn("FakeZapier.injectFault")(function* (given: FZ.FaultRule) {
      const rule = yield* checkFaultRule(given)
      yield* Ref.update(state, (s) => ({ ...s, faults: [...s.faults, { rule, seen: 0, fired: 0 }] }))
    }),
    clearFaults: Ref.update(state, (s) => ({ ...s, faults: [] })).pipe(Effect.withSpan("FakeZapier.clearFaults")),
    setRateLimit: Effect.fn("FakeZapier.setRateLimit")(function* (given: number | undefined) {
      const perMinute = yield* checkRateLimit(given)
      yield* Ref.update(state, (s) => ({
        ...s,
        rateLimit: { perMinute, window: Chunk.empty(), cooldownUntil: 0 },
        resultsRateLimit: { perMinute, window: Chunk.empty(), cooldownUntil: 0 }
      }))
    }),
    ledger: Effect.map(Ref.get(state), (s) => ({
      requests: Chunk.toReadonlyArray(s.ledger.requests),
      exchanges: Chunk.toReadonlyArray(s.ledger.exchanges),
      lookups: Chunk.toReadonlyArray(s.ledger.lookups),
      runs: Chunk.toReadonlyArray(s.ledger.runs),
      polls: Chunk.toReadonlyArray(s.ledger.polls),
      connects: Chunk.toReadonlyArray(s.ledger.connects),
      callbacks: Chunk.toReadonlyArray(s.ledger.callbacks)
    })).pipe(Effect.withSpan("FakeZapier.ledger")),
    resetLedger: Ref.update(state, (s) => ({ ...s, ledger: emptyLedger })).pipe(
      Effect.withSpan("FakeZapier.resetLedger")
    )
  }

  return {
    settings,
    clock,
    now,
    partner: Effect.map(Ref.get(state), (s) => s.partner),
    useJti,
    exchangeAccess,
    exchangeConnect,
    connectFor,
    authenticate,
    gate,
    record,
    control
  }
}

/** The kernel every area's routes and in-memory services use. */
export type Kernel = ReturnType<typeof make>
