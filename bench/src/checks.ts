/**
 * The count assertions (quick and full) and the targets of docs/targets.md (reported, never failing the run), over
 * the figures `report.ts` describes.
 */

import type * as Economy from "./economy.js"
import * as Polling from "./polling.js"
import type { Environment, Measured } from "./report.js"
import { economyModes, find, findEconomy, fmt, seconds } from "./report.js"

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/** G8's lag bound on the TestClock (RTT 0): 1.2 · min(5 s, 0.5 s + 0.5 · T). */
export const lagBound = (durationMs: number) => 1.2 * Math.min(5_000, 500 + 0.5 * durationMs)
/** G8's GET caps. */
export const getCaps: Record<number, number> = { 10000: 8, 60000: 20, 300000: 80 }

/** Counts that hold on any machine: a failure means the library (or the benchmark) changed behaviour. */
export const assertions = (r: Measured, budgetLimited: boolean): ReadonlyArray<Check> => {
  const checks: Array<Check> = []
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail })
  if (r.polling !== undefined) {
    for (const d of Polling.durations) {
      const fixed = find(r.polling, "fixed-1s", d)!
      const expected = Math.ceil(d / 1000)
      check(
        `polling: fixed-1s makes ${expected} GETs for a ${d / 1000} s run`,
        fixed.gets === expected && fixed.getsMax === expected,
        `mean ${fixed.gets}, max ${fixed.getsMax}`
      )
      const ez = find(r.polling, "effect-zapier", d)!
      check(
        `polling: effect-zapier max lag within G8 for ${d / 1000} s`,
        ez.lagMaxMs >= 0 && ez.lagMaxMs <= lagBound(d),
        `max ${fmt(ez.lagMaxMs)} ms, bound ${fmt(lagBound(d))} ms`
      )
      const cap = getCaps[d]
      if (cap !== undefined) {
        check(`polling: effect-zapier ≤ ${cap} GETs at ${d / 1000} s (G8)`, ez.getsMax <= cap, `max ${ez.getsMax}`)
      }
    }
    for (const row of r.polling) {
      check(
        `polling: every ${row.policy} run at ${seconds(row.durationMs)} was detected after it finished`,
        row.samples > 0 && Number.isFinite(row.lagMs) && row.lagMaxMs >= 0 && row.gets >= 1,
        `${row.samples} runs`
      )
    }
  }
  const c = r.callbackLag
  if (c !== undefined)
    check(
      "callback lag: every run ended by its callback, one delivery each, no poll",
      c.runs > 0 && c.viaCallback === c.runs && c.deliveries === c.runs && c.polls === 0,
      `${c.viaCallback}/${c.runs} by callback, ${c.deliveries} deliveries, ${c.polls} polls`
    )
  for (const x of r.economy ?? []) {
    if (x.mode === "zapier-sdk") {
      const expected = x.durationMs === "lognormal" ? undefined : x.durationMs < 180_000 ? x.samples : 0
      if (expected !== undefined)
        check(
          `economy: zapier-sdk completes ${expected}/${x.samples} runs at ${seconds(x.durationMs)} (180 s timeout)`,
          x.completed === expected,
          `${x.completed} completed`
        )
    } else
      check(
        `economy: every ${x.mode} run at ${seconds(x.durationMs)} completed`,
        x.completed === x.samples && x.samples > 0 && x.lagMs >= 0,
        `${x.completed}/${x.samples}`
      )
  }
  for (const o of r.overhead ?? []) {
    check(
      `overhead: every request succeeded at concurrency ${o.concurrency}`,
      o.errors === 0 && o.requests > 0,
      `${o.requests} requests, ${o.errors} failed`
    )
  }
  for (const s of r.tokenExchange?.scenarios ?? []) {
    check(
      `token exchange: ${s.callers} callers for ${s.users} user(s) → ${s.users} exchange(s)`,
      s.exchanges === s.users,
      `${s.exchanges} exchanges`
    )
  }
  if (r.flow !== undefined) {
    check(
      "flow: every run succeeded",
      r.flow.runs > 0 && Object.keys(r.flow.failures).length === 0,
      `${r.flow.runs} runs, failures ${JSON.stringify(r.flow.failures)}`
    )
    check(
      "flow: every run made the same requests (a whole number per endpoint, no retries)",
      Object.values(r.flow.perRun).every((v) => Number.isInteger(v)),
      JSON.stringify(r.flow.perRun)
    )
    const lp = r.flow.longPoll
    if (lp !== undefined) {
      check(
        "flow, long-poll reads: every run succeeded, with the same requests",
        lp.runs > 0 && Object.keys(lp.failures).length === 0 && Object.values(lp.perRun).every(Number.isInteger),
        `${lp.runs} runs, failures ${JSON.stringify(lp.failures)}, ${JSON.stringify(lp.perRun)}`
      )
    }
  }
  if (r.budget !== undefined) {
    if (budgetLimited)
      check("budget: 0 429s with the client's rate limiting", r.budget.rateLimited === 0, `${r.budget.rateLimited}`)
    check("budget: some runs completed", r.budget.runsPerMinute > 0, `${fmt(r.budget.runsPerMinute, 1)} runs/min`)
  }
  if (r.memory !== undefined)
    check("memory: every run succeeded", r.memory.failures === 0, `${r.memory.failures} failed`)
  if (r.durable !== undefined && r.durable !== null) {
    check(
      "durable: every run wrote to PostgreSQL and starts were measured",
      r.durable.sqlWritesPerRun > 0 && r.durable.startsPerSec > 0 && r.durable.inMemoryStartsPerSec > 0,
      `${fmt(r.durable.sqlWritesPerRun, 1)} rows/run`
    )
  }
  if (r.triggers !== undefined) {
    const chaos = r.triggers.chaos
    check(
      "triggers: under the chaos plan every message was acked or quarantined (0 lost)",
      chaos.lost === 0 && chaos.acked + chaos.quarantined === chaos.emitted,
      `${chaos.acked} acked, ${chaos.quarantined} quarantined of ${chaos.emitted}`
    )
    check(
      "triggers: at most 3 handler runs of one message under the chaos plan",
      chaos.maxExecutionsPerMessage <= 3,
      `max ${chaos.maxExecutionsPerMessage}`
    )
  }
  return checks
}

/**
 * The targets of docs/targets.md (G1, G7, G8, G10, G11), met or missed, for the scenarios measured; the run's
 * duration only when `whole` (every scenario ran).
 */
export const targets = (r: Measured, e: Environment, whole: boolean): ReadonlyArray<Check> => {
  const out: Array<Check> = []
  const target = (name: string, ok: boolean, detail: string) => out.push({ name, ok, detail })
  if (r.polling !== undefined) {
    for (const d of [2_000, 10_000, 60_000, 300_000, "lognormal"] as const) {
      const ez = find(r.polling, "effect-zapier", d)!
      const sdk = find(r.polling, "zapier-sdk", d)!
      target(
        `fewer GETs than the Zapier SDK schedule at ${seconds(d)}`,
        ez.gets < sdk.gets,
        `${fmt(ez.gets, 1)} vs ${fmt(sdk.gets, 1)}`
      )
    }
  }
  const economy = r.economy
  if (economy !== undefined) {
    const economyTargets: ReadonlyArray<readonly [Economy.Mode, number]> = [
      ["caches", 4.5],
      ["long-poll", 3.0],
      ["callbacks", 2.3]
    ]
    for (const [mode, most] of economyTargets) {
      const x = findEconomy(economy, mode, "lognormal")
      if (x !== undefined)
        target(
          `≤ ${fmt(most, 1)} requests per run with ${mode} on the log-normal mix (issue 11)`,
          x.requestsPerRun <= most,
          fmt(x.requestsPerRun, 2)
        )
    }
    const adaptive = findEconomy(economy, "caches", "lognormal")
    const fixed = findEconomy(economy, "defaults", "lognormal")
    if (adaptive !== undefined && fixed !== undefined)
      target(
        "mean detection lag on the log-normal mix with the adaptive schedule (caches) ≤ the fixed schedule's (defaults) (issue 11)",
        adaptive.lagMs <= fixed.lagMs,
        `${fmt(adaptive.lagMs / 1000, 2)} s vs ${fmt(fixed.lagMs / 1000, 2)} s`
      )
    for (const mode of economyModes(economy).filter((m) => m !== "zapier-sdk" && m !== "defaults")) {
      const behind = [...Polling.durations, "lognormal" as const].filter((d) => {
        const x = findEconomy(economy, mode, d)
        const sdk = findEconomy(economy, "zapier-sdk", d)
        return x !== undefined && sdk !== undefined && !(x.requestsPerRun < sdk.requestsPerRun)
      })
      target(
        `fewer requests per run than the Zapier SDK's pattern at every duration with ${mode} (issue 11)`,
        behind.length === 0,
        behind.length === 0 ? "every duration" : `not at ${behind.map(seconds).join(", ")}`
      )
    }
  }
  if (r.callbackLag !== undefined)
    target(
      "detection lag with callbacks ≤ 100 ms after the fake posts, p95 and max, over loopback (issue 11)",
      r.callbackLag.lagP95Ms <= 100 && r.callbackLag.lagMaxMs <= 100,
      `p95 ${fmt(r.callbackLag.lagP95Ms, 1)} ms, max ${fmt(r.callbackLag.lagMaxMs, 1)} ms`
    )
  const c50 = r.overhead?.find((o) => o.concurrency === 50)
  if (c50 !== undefined) {
    target(
      "library CPU ≤ 300 µs per request at concurrency 50 (G10)",
      c50.libraryCpuMicrosPerRequest <= 300,
      `${fmt(c50.libraryCpuMicrosPerRequest)} µs`
    )
    target(
      "≥ 4,000 req/s at concurrency 50, limiter off (G10)",
      c50.libraryReqPerSec >= 4_000,
      `${fmt(c50.libraryReqPerSec)} req/s`
    )
  }
  const c1 = r.overhead?.find((o) => o.concurrency === 1)
  if (c1 !== undefined) {
    target(
      "≤ 0.3 ms p50 added over raw undici at concurrency 1 (G10)",
      c1.libraryP50Ms - c1.undiciP50Ms <= 0.3,
      `+${fmt(c1.libraryP50Ms - c1.undiciP50Ms, 2)} ms`
    )
  }
  const t = r.tokenExchange
  if (t !== undefined) {
    target(
      "exactly 1 exchange per user under any concurrency (G1)",
      t.scenarios.every((s) => s.exchanges === s.users),
      t.scenarios.map((s) => `${s.exchanges}/${s.users}`).join(", ")
    )
    target(
      "exchange CPU incl. signing ≤ 1 ms with ES256 (G10)",
      t.es256ExchangeCpuMicros <= 1_000,
      `${fmt(t.es256ExchangeCpuMicros)} µs`
    )
    target(
      "exchange CPU incl. signing ≤ 1.5 ms with RS256 (G10)",
      t.rs256ExchangeCpuMicros <= 1_500,
      `${fmt(t.rs256ExchangeCpuMicros)} µs`
    )
  }
  if (r.budget !== undefined)
    target(
      "≥ 90 % of the budget used with 0 429s (G7)",
      r.budget.achievedFraction >= 0.9 && r.budget.rateLimited === 0,
      `${fmt(r.budget.achievedFraction * 100, 1)} %, ${r.budget.rateLimited} × 429`
    )
  const m = r.memory
  if (m !== undefined) {
    const per100k = (m.heapGrowthMB * 100_000) / m.runs
    target(
      "heap growth < 20 MB per 100,000 runs (G11)",
      per100k < 20,
      `${fmt(m.heapGrowthMB, 1)} MB over ${fmt(m.runs)} runs`
    )
    target(
      "no active handles after dispose (G11)",
      m.activeResourcesAfterDispose.length === 0,
      m.activeResourcesAfterDispose.join(", ") || "none"
    )
  }
  if (r.triggers !== undefined) {
    target(
      "triggers: emit → handler p95 ≤ 1 s with SSE",
      r.triggers.emitToHandlerP95Ms <= 1000,
      `${fmt(r.triggers.emitToHandlerP95Ms)} ms`
    )
    target(
      "triggers: ≤ 0.25 requests per message at batch 10",
      r.triggers.requestsPerMessage.batch10 <= 0.25,
      fmt(r.triggers.requestsPerMessage.batch10, 3)
    )
  }
  if (whole) {
    const limit = e.mode === "full" ? 300 : 60
    target(`finishes in under ${limit} s`, e.seconds < limit, `${fmt(e.seconds)} s`)
  }
  return out
}

export const renderChecks = (title: string, checks: ReadonlyArray<Check>, miss: string): string =>
  [`\n${title}`, ...checks.map((c) => `  ${c.ok ? "ok  " : miss} ${c.name} — ${c.detail}`)].join("\n")
