/**
 * `pnpm bench` — measures effect-zapier against the alternatives a partner would pick, writes
 * `bench/results.json` and prints the table. `pnpm bench --quick` runs every scenario small (CI: under 60 s),
 * writes `bench/results.quick.json`, and like the full run exits non-zero when a count assertion fails (counts
 * only, never times). Targets are reported, met or missed, and never change the exit code.
 *
 * Run with `node --expose-gc` (the package script does).
 */
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Clients from "./clients.js"
import * as Durable from "./durable.js"
import * as Economy from "./economy.js"
import * as Flow from "./flow.js"
import * as Memory from "./memory.js"
import * as Overhead from "./overhead.js"
import * as Polling from "./polling.js"
import * as Report from "./report.js"
import * as Tokens from "./tokens.js"
import * as Triggers from "./triggers.js"

const settings = {
  full: {
    file: "results.json",
    polling: { samples: 30, lognormalSamples: 300, seed: 6 },
    economy: { samples: 30, lognormalSamples: 300, runsPerClient: 30, seed: 11 },
    overhead: { rounds: 5, roundMillis: 800, concurrencies: [1, 50] },
    tokens: { signatures: 2_000, exchanges: 300 },
    flow: { concurrency: 64, users: 8, millis: 8_000 },
    budget: { concurrency: 4, users: 4, limitPerMinute: 60, timeScale: 10, minutes: 5 },
    memory: { runs: 100_000, concurrency: 64 },
    durable: { runs: 100, starts: 300, concurrency: 16 },
    triggers: { singles: 30, burst: 500, chaos: 200 }
  },
  quick: {
    file: "results.quick.json",
    polling: { samples: 3, lognormalSamples: 30, seed: 6 },
    economy: { samples: 6, lognormalSamples: 30, runsPerClient: 15, seed: 11 },
    overhead: { rounds: 2, roundMillis: 200, concurrencies: [1, 50] },
    tokens: { signatures: 200, exchanges: 30 },
    flow: { concurrency: 64, users: 8, millis: 1_500 },
    budget: { concurrency: 4, users: 4, limitPerMinute: 60, timeScale: 10, minutes: 1 },
    memory: { runs: 10_000, concurrency: 64 },
    durable: { runs: 20, starts: 50, concurrency: 16 },
    triggers: { singles: 10, burst: 100, chaos: 50 }
  }
} as const

const mode = Effect.try({
  try: () =>
    parseArgs({
      args: process.argv.slice(2).filter((a) => a !== "--"),
      options: { quick: { type: "boolean", default: false } },
      strict: true
    }).values.quick
      ? ("quick" as const)
      : ("full" as const),
  catch: (e) => `bad arguments (the only option is --quick): ${e instanceof Error ? e.message : String(e)}`
})

const commit = Effect.try(() => {
  const git = (...args: Array<string>) => execFileSync("git", args, { encoding: "utf8" }).trim()
  return `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain").length > 0 ? "+dirty" : ""}`
}).pipe(Effect.orElseSucceed(() => "unknown"))

/** Logs the step, runs it, logs how long it took. */
const step = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    yield* Console.log(`… ${name}`)
    const start = performance.now()
    const result = yield* effect
    yield* Console.log(`  ${name}: ${((performance.now() - start) / 1000).toFixed(1)} s`)
    return result
  })

const main = Effect.gen(function* () {
  const which = yield* mode
  const s = settings[which]
  const started = performance.now()
  if (globalThis.gc === undefined) return yield* Effect.fail("run with node --expose-gc (pnpm bench does)")
  yield* Console.log(`effect-zapier benchmark (${which})`)

  // Memory first, on a heap nothing else has touched yet.
  const memory = yield* step(
    `memory: ${s.memory.runs.toLocaleString("en-US")} runs on FakeZapier.layer`,
    Memory.run(s.memory)
  )
  const polling = yield* step("polling (TestClock)", Polling.run(s.polling))
  const economy = yield* step("request economy (TestClock)", Economy.run(s.economy))
  const keys = yield* Clients.generateKeys
  const tokens = yield* step("token exchange", Tokens.run(s.tokens, keys))
  const overhead = yield* step("per-request overhead", Overhead.run(s.overhead, keys))
  const flow = yield* step("whole flow", Flow.flow(s.flow, keys))
  const budget = yield* step(
    "inside the budget",
    Flow.budget({ ...s.budget, requestsPerRun: flow.requestsPerRun }, keys)
  )

  const durable = yield* step("durable runs (PostgreSQL, one process)", Durable.run(s.durable))
  const triggers = yield* step("embedded triggers (Trigger Inbox over loopback)", Triggers.run(s.triggers))

  const results: Report.Results = {
    polling,
    economy,
    overhead,
    tokenExchange: {
      scenarios: tokens.scenarios,
      es256SignMicros: tokens.es256SignMicros,
      rs256SignMicros: tokens.rs256SignMicros,
      es256ExchangeCpuMicros: tokens.es256ExchangeCpuMicros,
      rs256ExchangeCpuMicros: tokens.rs256ExchangeCpuMicros
    },
    flow,
    budget,
    memory,
    durable,
    triggers,
    environment: {
      node: process.version,
      cpu: os.cpus()[0]?.model.trim() ?? "unknown",
      cores: os.cpus().length,
      platform: `${os.platform()} ${os.arch()}`,
      date: new Date().toISOString(),
      mode: which,
      commit: yield* commit,
      seconds: (performance.now() - started) / 1000
    }
  }
  const file = fileURLToPath(new URL(`../${s.file}`, import.meta.url))
  yield* Effect.try(() => writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`))
  yield* Console.log(`\n${Report.render(results)}`)
  const checks = Report.assertions(results, Flow.clientRateLimiting(s.budget.limitPerMinute) !== undefined)
  yield* Console.log(Report.renderChecks("Count assertions:", checks, "FAIL"))
  yield* Console.log(
    Report.renderChecks(
      `Targets (docs/targets.md)${which === "quick" ? " — quick samples are small, see pnpm bench for the figures" : ""}:`,
      Report.targets(results),
      "MISS"
    )
  )
  yield* Console.log(`\nwrote ${file}`)
  const failed = checks.filter((c) => !c.ok)
  if (failed.length > 0) return yield* Effect.fail(`${failed.length} count assertion(s) failed`)
})

NodeRuntime.runMain(
  main.pipe(
    Effect.catchAll((e) =>
      Console.error(`\nbench failed: ${typeof e === "string" ? e : String(e)}`).pipe(
        Effect.zipRight(Effect.sync(() => (process.exitCode = 1)))
      )
    )
  ),
  { disableErrorReporting: true }
)
