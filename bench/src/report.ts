/**
 * The results file's shape and the printed table (with ratios against the alternatives); the count assertions and
 * the targets of docs/targets.md are in `checks.ts`.
 */

import type * as CallbackLag from "./callbackLag.js"
import type * as Durable from "./durable.js"
import * as Economy from "./economy.js"
import type * as Flow from "./flow.js"
import type * as Memory from "./memory.js"
import type * as Overhead from "./overhead.js"
import * as Polling from "./polling.js"
import type * as Tokens from "./tokens.js"
import type * as Triggers from "./triggers.js"

export interface Environment {
  readonly node: string
  readonly cpu: string
  readonly cores: number
  readonly platform: string
  readonly date: string
  readonly mode: "full" | "quick"
  readonly commit: string
  readonly seconds: number
  /**
   * The keys measured later by `pnpm bench --only` and merged into this file, each with the run that measured it
   * (the fields above describe the run that wrote the other keys). Absent after a run of every scenario.
   */
  readonly separately?: { readonly [key: string]: Omit<Environment, "separately"> }
}

/** `bench/results.json`: exactly these top-level keys. */
export interface Results {
  readonly polling: ReadonlyArray<Polling.Row>
  readonly economy: ReadonlyArray<Economy.Row>
  readonly callbackLag: CallbackLag.Result
  readonly overhead: ReadonlyArray<Overhead.Row>
  readonly tokenExchange: {
    readonly scenarios: ReadonlyArray<Tokens.Scenario>
    readonly es256SignMicros: number
    readonly rs256SignMicros: number
    readonly es256ExchangeCpuMicros: number
    readonly rs256ExchangeCpuMicros: number
    /** The same exchange hand-written on the bare Effect HttpClient, for reference. */
    readonly es256BareExchangeCpuMicros: number
    readonly rs256BareExchangeCpuMicros: number
  }
  readonly flow: Flow.FlowResult
  readonly budget: Flow.BudgetResult
  readonly memory: Memory.Result
  /** `null` when PostgreSQL could not be reached. */
  readonly durable: Durable.Result | null
  readonly triggers: Triggers.Result
  readonly environment: Environment
}

/** A results key naming a scenario (every top-level key but `environment`). */
export type Key = Exclude<keyof Results, "environment">

/** The scenarios' keys, in the order a full run measures them (memory first, on an untouched heap). */
export const keys: ReadonlyArray<Key> = [
  "memory",
  "polling",
  "economy",
  "callbackLag",
  "tokenExchange",
  "overhead",
  "flow",
  "budget",
  "durable",
  "triggers"
]

/** The figures of the scenarios one run measured (all of them, or those `--only` names). */
export type Measured = { readonly [K in Key]?: Results[K] }

// ---------------------------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------------------------

export const fmt = (x: number, digits = 0): string =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–"
const ratio = (a: number, b: number): string => (b === 0 || !Number.isFinite(a / b) ? "–" : `${fmt(a / b, 2)}×`)
export const seconds = (ms: number | "lognormal") =>
  ms === "lognormal" ? "log-normal (median 2 s)" : `${fmt(ms / 1000, 1)} s`

/** A Markdown table (also readable in a terminal). */
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  const rule = `| ${widths.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

export const find = (rows: ReadonlyArray<Polling.Row>, policy: Polling.Policy, d: number | "lognormal") =>
  rows.find((x) => x.policy === policy && x.durationMs === d)

/** The tables of the scenarios measured in this run (`e` describes the run). */
export const render = (e: Environment, r: Measured): string => {
  const out: Array<string> = []
  out.push(
    `effect-zapier benchmark (${e.mode}) — node ${e.node}, ${e.cpu} × ${e.cores}, ${e.platform}, ${e.date}, ` +
      `commit ${e.commit}, ${fmt(e.seconds, 0)} s`
  )
  if (r.polling !== undefined) out.push(...renderPolling(r.polling))
  if (r.overhead !== undefined) out.push(...renderOverhead(r.overhead))
  if (r.tokenExchange !== undefined) out.push(...renderTokens(r.tokenExchange))
  if (r.flow !== undefined) out.push(...renderFlow(r.flow))
  if (r.budget !== undefined) out.push(...renderBudget(r.budget))
  if (r.memory !== undefined) out.push(...renderMemory(r.memory))
  if (r.durable !== undefined) out.push(...renderDurable(r.durable))
  if (r.triggers !== undefined) out.push(...renderTriggers(r.triggers))
  if (r.economy !== undefined) out.push(renderEconomy(r.economy))
  if (r.callbackLag !== undefined) out.push(renderCallbackLag(r.callbackLag))
  return out.join("\n")
}

const renderPolling = (polling: ReadonlyArray<Polling.Row>): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    "\n**1. Polling** (TestClock; mean status GETs per run / mean detection lag; ratio = effect-zapier ÷ alternative)\n"
  )
  out.push(
    table(
      [
        "run finishes after",
        "effect-zapier",
        "zapier-sdk",
        "fixed-1s",
        "GETs vs sdk",
        "GETs vs fixed",
        "lag vs sdk",
        "max lag (ez)"
      ],
      [...Polling.durations, "lognormal" as const].map((d) => {
        const ez = find(polling, "effect-zapier", d)!
        const sdk = find(polling, "zapier-sdk", d)!
        const fixed = find(polling, "fixed-1s", d)!
        const cell = (x: Polling.Row) => `${fmt(x.gets, 1)} / ${fmt(x.lagMs / 1000, 2)} s`
        return [
          seconds(d),
          cell(ez),
          cell(sdk),
          cell(fixed),
          ratio(ez.gets, sdk.gets),
          ratio(ez.gets, fixed.gets),
          ratio(ez.lagMs, sdk.lagMs),
          `${fmt(ez.lagMaxMs / 1000, 2)} s`
        ]
      })
    )
  )

  out.push(
    "\nzapier-sdk is Zapier's SDK `pollUntilComplete` schedule re-implemented from its published figures (50 ms, then " +
      "125 ms → 250 ms → 500 ms → 1 s → 2.5 s → 5 s → 10 s → 60 s by elapsed time, + 0–50 % jitter); both it and " +
      "effect-zapier poll without their 180 s default deadline here, so the 300 s run is measured (the SDK would " +
      "give up at 180 s). effect-zapier is the library's own `EmbeddedActions.await` with the default policy; the runs " +
      "of a duration are awaited side by side, so its adaptive schedule learns nothing here (section 8 runs them one " +
      "after another)."
  )
  return out
}

const renderOverhead = (overhead: ReadonlyArray<Overhead.Row>): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    "\n**2. Per-request overhead** (`ActionRuns.get`, real clock, loopback; medians of rounds; client CPU via " +
      "`process.cpuUsage`, the fake server in another process)\n"
  )
  out.push(
    table(
      [
        "concurrency",
        "library req/s",
        "undici req/s",
        "lib ÷ undici",
        "library CPU µs/req",
        "undici CPU µs/req",
        "lib ÷ undici",
        "bare Effect HttpClient req/s · CPU µs",
        "p50 library / undici"
      ],
      overhead.map((o) => [
        String(o.concurrency),
        fmt(o.libraryReqPerSec),
        fmt(o.undiciReqPerSec),
        ratio(o.libraryReqPerSec, o.undiciReqPerSec),
        fmt(o.libraryCpuMicrosPerRequest),
        fmt(o.undiciCpuMicrosPerRequest),
        ratio(o.libraryCpuMicrosPerRequest, o.undiciCpuMicrosPerRequest),
        `${fmt(o.effectHttpReqPerSec)} · ${fmt(o.effectHttpCpuMicrosPerRequest)}`,
        `${fmt(o.libraryP50Ms, 2)} / ${fmt(o.undiciP50Ms, 2)} ms`
      ])
    )
  )

  return out
}

const renderTokens = (t: Results["tokenExchange"]): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    "\n**3. Token exchange** (exchanges counted by the fake's ledger, each answered after 200 ms; signing and " +
      "exchange CPU sequential, client side: sign, POST, decode, cache; the bare reference signs with node:crypto, " +
      "POSTs the same form and parses the JSON, nothing more)\n"
  )
  out.push(
    table(
      ["callers", "users", "exchanges", "per user"],
      t.scenarios.map((s) => [fmt(s.callers), fmt(s.users), fmt(s.exchanges), fmt(s.exchanges / s.users, 2)])
    )
  )
  out.push("")
  out.push(
    table(
      ["per exchange or JWT", "ES256", "RS256", "RS256 ÷ ES256"],
      [
        [
          "sign one partner JWT with jose, key imported once (CPU µs)",
          fmt(t.es256SignMicros),
          fmt(t.rs256SignMicros),
          ratio(t.rs256SignMicros, t.es256SignMicros)
        ],
        [
          "whole exchange, client CPU µs",
          fmt(t.es256ExchangeCpuMicros),
          fmt(t.rs256ExchangeCpuMicros),
          ratio(t.rs256ExchangeCpuMicros, t.es256ExchangeCpuMicros)
        ],
        [
          "same exchange on the bare Effect HttpClient (CPU µs)",
          fmt(t.es256BareExchangeCpuMicros),
          fmt(t.rs256BareExchangeCpuMicros),
          ratio(t.rs256BareExchangeCpuMicros, t.es256BareExchangeCpuMicros)
        ],
        [
          "library ÷ bare",
          ratio(t.es256ExchangeCpuMicros, t.es256BareExchangeCpuMicros),
          ratio(t.rs256ExchangeCpuMicros, t.rs256BareExchangeCpuMicros),
          ""
        ]
      ]
    )
  )

  return out
}

const renderFlow = (f: Flow.FlowResult): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    `\n**4. Whole flow** (\`EmbeddedActions.run\`, token and connection cached, rate limiting off; ${f.runScript})\n`
  )
  out.push(
    table(
      [
        "concurrency",
        "runs/s",
        "Zapier requests per run",
        "create → first read",
        "CPU per run, client / fake (GC share)",
        "per endpoint"
      ],
      [
        { label: String(f.concurrency), row: f },
        ...(f.longPoll !== undefined ? [{ label: `${f.concurrency}, long-poll reads`, row: f.longPoll }] : [])
      ].map(({ label, row }) => [
        label,
        fmt(row.runsPerSec, 1),
        fmt(row.requestsPerRun, 2),
        row.firstReadMs === undefined ? "–" : `${fmt(row.firstReadMs, 0)} ms`,
        row.cpuPerRunMicros === undefined
          ? "–"
          : `${fmt(row.cpuPerRunMicros.client, 0)} µs (${fmt(row.gcShare.client * 100, 0)} %) / ` +
            `${fmt(row.cpuPerRunMicros.fake, 0)} µs (${fmt(row.gcShare.fake * 100, 0)} %)`,
        Object.entries(row.perRun)
          .map(([k, v]) => `${k} ×${fmt(v, 2)}`)
          .join(", ")
      ])
    )
  )

  return out
}

const renderBudget = (b: Flow.BudgetResult): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    `\n**5. Inside the budget** (the fake allows ${b.limitPerMinute} /v2 requests per minute, 60 s cooldown after a ` +
      `429; fake and client clocks ${b.timeScale}× real time; ${fmt(b.minutes, 1)} minutes; concurrency ` +
      `${b.concurrency}; client rate limiting: ${b.clientRateLimiting}; runs still in flight at the end not counted)\n`
  )
  out.push(
    table(
      ["limit/min", "runs/min", "theoretical runs/min", "achieved", "429s", "accepted /v2 req/min"],
      [
        [
          fmt(b.limitPerMinute),
          fmt(b.runsPerMinute, 1),
          fmt(b.theoreticalRunsPerMinute, 1),
          `${fmt(b.achievedFraction * 100, 1)} %`,
          fmt(b.rateLimited),
          fmt(b.acceptedPerMinute, 1)
        ]
      ]
    )
  )

  return out
}

const renderMemory = (m: Memory.Result): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    "\n**6. Memory** (heap after GC across runs on `FakeZapier.layer`; library = with library − fake-only control)\n"
  )
  out.push(
    table(
      ["runs", "library growth", "with library", "fake only", "after dispose", "active handles after dispose"],
      [
        [
          fmt(m.runs),
          `${fmt(m.heapGrowthMB, 1)} MB`,
          `${fmt(m.withLibraryMB, 1)} MB`,
          `${fmt(m.fakeOnlyMB, 1)} MB`,
          `${fmt(m.afterDisposeMB, 1)} MB`,
          m.activeResourcesAfterDispose.length === 0 ? "none" : m.activeResourcesAfterDispose.join(", ")
        ]
      ]
    )
  )

  return out
}

const renderDurable = (d: Durable.Result | null): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push(
    "\n**7. Durable runs** (`@effect-zapier/workflow` on one process over the in-memory fake; rows PostgreSQL wrote " +
      "per run from start to result; `start` calls per second, each committed)\n"
  )
  out.push(
    d === null
      ? "skipped: PostgreSQL could not be reached (ZAPIER_TEST_PG_URL)"
      : table(
          ["runs", "SQL rows written per run", "starts/s (PostgreSQL)", "starts/s (memory engine)", "ratio"],
          [
            [
              fmt(d.runs),
              fmt(d.sqlWritesPerRun, 1),
              fmt(d.startsPerSec, 0),
              fmt(d.inMemoryStartsPerSec, 0),
              ratio(d.startsPerSec, d.inMemoryStartsPerSec)
            ]
          ]
        )
  )

  return out
}

const renderTriggers = (tr: Triggers.Result): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push("\n**Embedded triggers** (Trigger Inbox over loopback; SSE wake-ups; requests = leases + acks + releases)\n")
  out.push(
    table(
      ["", "effect-zapier", "SDK drain/watch"],
      [
        [
          "emit → handler p95 (single events)",
          `${fmt(tr.emitToHandlerP95Ms)} ms`,
          `${fmt(tr.sdkDrainWatch.emitToHandlerP95Ms)} ms`
        ],
        [
          "requests per message, single events",
          fmt(tr.library.requestsPerMessageSingles, 2),
          fmt(tr.sdkDrainWatch.requestsPerMessage.singles, 2)
        ],
        [
          "requests per message, burst at batch 10",
          fmt(tr.requestsPerMessage.batch10, 3),
          fmt(tr.sdkDrainWatch.requestsPerMessage.batch10, 3)
        ],
        ["requests per message, burst at batch 1", fmt(tr.requestsPerMessage.batch1, 3), "–"],
        ["messages/s (burst, batch 10)", fmt(tr.messagesPerSec, 0), "–"],
        [
          "chaos: emitted / acked / quarantined / lost / max runs",
          `${tr.chaos.emitted} / ${tr.chaos.acked} / ${tr.chaos.quarantined} / ${tr.chaos.lost} / ${tr.chaos.maxExecutionsPerMessage}`,
          "–"
        ]
      ]
    )
  )
  return out
}

export const economyModes = (economy: ReadonlyArray<Economy.Row>): ReadonlyArray<Economy.Mode> =>
  Economy.allModes.filter((m) => economy.some((x) => x.mode === m))

export const findEconomy = (economy: ReadonlyArray<Economy.Row>, mode: Economy.Mode, d: number | "lognormal") =>
  economy.find((x) => x.mode === mode && x.durationMs === d)

/** The callback lag over loopback: how long after a run ends the awaiting fiber has it from the signed callback. */
const renderCallbackLag = (c: CallbackLag.Result): string =>
  `\n**10. Callback lag** (live clock, loopback HTTP through RunCallback.handler, signature verified; ${fmt(c.runs)} ` +
  `runs one after another): from the run's end (the fake signs and POSTs then) to the await's completion: ` +
  `p50 ${fmt(c.lagP50Ms, 1)} ms · p95 ${fmt(c.lagP95Ms, 1)} ms · max ${fmt(c.lagMaxMs, 1)} ms · mean ` +
  `${fmt(c.lagMeanMs, 1)} ms; ${fmt(c.viaCallback)} ended by the callback, ${fmt(c.polls)} polls, ` +
  `${fmt(c.deliveries)} deliveries, ${fmt(c.jwksFetches)} key set fetches (the key set was fetched before).`

/** The economy table: requests per run, runs per minute inside 60 requests/min and mean lag, per mode. */
export const renderEconomy = (economy: ReadonlyArray<Economy.Row>): string => {
  const modes = economyModes(economy)
  const rows = [...Polling.durations, "lognormal" as const].map((d) => [
    seconds(d),
    ...modes.map((m) => {
      const x = findEconomy(economy, m, d)
      if (x === undefined) return "–"
      const failed = x.completed < x.samples ? ` (${fmt(x.completed)}/${fmt(x.samples)} completed)` : ""
      const lag = x.completed > 0 ? `${fmt(x.lagMs / 1000, 2)} s` : "–"
      return `${fmt(x.requestsPerRun, 2)} · ${fmt(x.runsPerMinute, 1)} · ${lag}${failed}`
    })
  ])
  return [
    "\n**8. Request economy** (TestClock; per run: Zapier requests (token exchanges excluded) · runs per minute " +
      "inside 60 requests/min · mean detection lag; each client runs its runs one after another, so what it learns " +
      "carries over)\n",
    table(["run finishes after", ...modes], rows),
    "\ndefaults = connections listed and input fields fetched before every run, fixed polling schedule (the library " +
      "before this work); caches = the library's defaults now (connection verified within 10 min, input fields for " +
      "10 min, adaptive polling); long-poll = caches + the long-poll read (held up to 30 s; Zapier meters these reads in a bucket of their own, so " +
      "its runs per minute count the other requests); callbacks = caches + run callbacks " +
      "(safety-net polling); zapier-sdk = Zapier's SDK's pattern (action id cached 60 s, create, its schedule; it " +
      "gives up at 180 s, so its 300 s runs never complete)."
  ].join("\n")
}
