/**
 * `pnpm bench` — measures effect-zapier against the alternatives a partner would pick, writes
 * `bench/results.json` and prints the table. `pnpm bench --quick` runs every scenario small (CI: under 60 s),
 * writes `bench/results.quick.json`, and like the full run exits non-zero when a count assertion fails (counts
 * only, never times). Targets are reported, met or missed, and never change the exit code.
 * `--only <key>[,<key>]` runs only the scenarios of those results keys and merges their figures into the results
 * file, keeping every other key.
 *
 * Run with `node --expose-gc` (the package script does).
 */
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as CallbackLag from "./callbackLag.js"
import * as Checks from "./checks.js"
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
    callbackLag: { runs: 200, runMillis: 20 },
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
    callbackLag: { runs: 50, runMillis: 20 },
    overhead: { rounds: 2, roundMillis: 200, concurrencies: [1, 50] },
    tokens: { signatures: 200, exchanges: 30 },
    flow: { concurrency: 64, users: 8, millis: 1_500 },
    budget: { concurrency: 4, users: 4, limitPerMinute: 60, timeScale: 10, minutes: 1 },
    memory: { runs: 10_000, concurrency: 64 },
    durable: { runs: 20, starts: 50, concurrency: 16 },
    triggers: { singles: 10, burst: 100, chaos: 50 }
  }
} as const

/** `--quick` and `--only <key>[,<key>]` (undefined: every scenario). */
const options = Effect.gen(function* () {
  const values = yield* Effect.try({
    try: () =>
      parseArgs({
        args: process.argv.slice(2).filter((a) => a !== "--"),
        options: { quick: { type: "boolean", default: false }, only: { type: "string" } },
        strict: true
      }).values,
    catch: (e) =>
      `bad arguments (the options are --quick and --only <key>[,<key>]): ${e instanceof Error ? e.message : String(e)}`
  })
  const which = values.quick === true ? ("quick" as const) : ("full" as const)
  if (values.only === undefined) return { which, only: undefined }
  const named = values.only
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k.length > 0)
  const unknown = named.filter((k) => !Report.keys.some((key) => key === k))
  if (named.length === 0 || unknown.length > 0)
    return yield* Effect.fail(
      `--only ${named.length === 0 ? "needs at least one key" : `names no scenario: ${unknown.join(", ")}`}; ` +
        `the keys are ${Report.keys.join(", ")}`
    )
  return { which, only: Report.keys.filter((k) => named.includes(k)) }
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

/** A results file as written before: a JSON object whose keys are kept (each value as it is). */
const PreviousFile = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
const isObject = Schema.is(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
/** What `--only budget` needs of the flow key already in the file. */
const PreviousFlow = Schema.Struct({ flow: Schema.Struct({ requestsPerRun: Schema.Number }) })

/** The results file's contents before this run (empty when there is no file yet). */
const readPrevious = (file: string) =>
  Effect.gen(function* () {
    if (!existsSync(file)) return {}
    const text = yield* Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (e) => `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`
    })
    return yield* Schema.decodeUnknown(PreviousFile)(text).pipe(
      Effect.mapError(
        (e) =>
          `${file} is not a JSON object of results (${e.message}); --only merges into it: fix or delete it, or run ` +
          "every scenario"
      )
    )
  })

const main = Effect.gen(function* () {
  const { which, only } = yield* options
  const s = settings[which]
  const selected = new Set<Report.Key>(only ?? Report.keys)
  const file = fileURLToPath(new URL(`../${s.file}`, import.meta.url))
  const previous = only === undefined ? {} : yield* readPrevious(file)
  const started = performance.now()
  if (globalThis.gc === undefined) return yield* Effect.fail("run with node --expose-gc (pnpm bench does)")
  yield* Console.log(`effect-zapier benchmark (${which}${only === undefined ? "" : `, only ${only.join(", ")}`})`)

  const measured: { -readonly [K in Report.Key]?: Report.Results[K] } = {}
  // Memory first, on a heap nothing else has touched yet.
  if (selected.has("memory"))
    measured.memory = yield* step(
      `memory: ${s.memory.runs.toLocaleString("en-US")} runs on FakeZapier.layer`,
      Memory.run(s.memory)
    )
  if (selected.has("polling")) measured.polling = yield* step("polling (TestClock)", Polling.run(s.polling))
  if (selected.has("economy")) measured.economy = yield* step("request economy (TestClock)", Economy.run(s.economy))
  if (selected.has("callbackLag"))
    measured.callbackLag = yield* step("callback lag (loopback, live clock)", CallbackLag.run(s.callbackLag))
  const needsKeys = ["tokenExchange", "overhead", "flow", "budget"] as const
  if (needsKeys.some((k) => selected.has(k))) {
    const keys = yield* Clients.generateKeys
    if (selected.has("tokenExchange")) {
      const tokens = yield* step("token exchange", Tokens.run(s.tokens, keys))
      measured.tokenExchange = {
        scenarios: tokens.scenarios,
        es256SignMicros: tokens.es256SignMicros,
        rs256SignMicros: tokens.rs256SignMicros,
        es256ExchangeCpuMicros: tokens.es256ExchangeCpuMicros,
        rs256ExchangeCpuMicros: tokens.rs256ExchangeCpuMicros,
        es256BareExchangeCpuMicros: tokens.es256BareExchangeCpuMicros,
        rs256BareExchangeCpuMicros: tokens.rs256BareExchangeCpuMicros
      }
    }
    if (selected.has("overhead"))
      measured.overhead = yield* step("per-request overhead", Overhead.run(s.overhead, keys))
    if (selected.has("flow")) measured.flow = yield* step("whole flow", Flow.flow(s.flow, keys))
    if (selected.has("budget")) {
      // The budget's theoretical runs per minute divide by the flow's requests per run: this run's, or the file's.
      const requestsPerRun =
        measured.flow?.requestsPerRun ??
        (yield* Schema.decodeUnknown(PreviousFlow)(previous).pipe(
          Effect.mapError(
            () =>
              `--only budget needs the flow figure (requests per run): ${s.file} has none; add flow (--only flow,budget)`
          )
        )).flow.requestsPerRun
      measured.budget = yield* step("inside the budget", Flow.budget({ ...s.budget, requestsPerRun }, keys))
    }
  }
  if (selected.has("durable")) {
    measured.durable = yield* step("durable runs (PostgreSQL, one process)", Durable.run(s.durable))
    if (only !== undefined && measured.durable === null)
      return yield* Effect.fail(
        `durable: PostgreSQL could not be reached (ZAPIER_TEST_PG_URL); ${s.file} is left as it was`
      )
  }
  if (selected.has("triggers"))
    measured.triggers = yield* step("embedded triggers (Trigger Inbox over loopback)", Triggers.run(s.triggers))

  const environment: Report.Environment = {
    node: process.version,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.cpus().length,
    platform: `${os.platform()} ${os.arch()}`,
    date: new Date().toISOString(),
    mode: which,
    commit: yield* commit,
    seconds: (performance.now() - started) / 1000
  }
  // With --only: every key of the file is kept, the measured ones replaced; the file's environment stays (it
  // describes the run that wrote the other keys) and records this run under `separately`, per key measured.
  // The file's keys keep their order (a key measured again is replaced in place); new keys follow, then environment.
  const written: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(previous)) if (k !== "environment") written[k] = v
  for (const k of Report.keys) if (measured[k] !== undefined) written[k] = measured[k]
  if (only === undefined) written.environment = environment
  else {
    const kept = isObject(previous.environment) ? previous.environment : undefined
    const separately = isObject(kept?.separately) ? kept.separately : {}
    written.environment = {
      ...(kept ?? environment),
      separately: { ...separately, ...Object.fromEntries(only.map((k) => [k, environment])) }
    }
  }
  yield* Effect.try({
    try: () => writeFileSync(file, `${JSON.stringify(written, null, 2)}\n`),
    catch: (e) => `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`
  })
  yield* Console.log(`\n${Report.render(environment, measured)}`)
  const checks = Checks.assertions(measured, Flow.clientRateLimiting(s.budget.limitPerMinute) !== undefined)
  yield* Console.log(Checks.renderChecks("Count assertions:", checks, "FAIL"))
  yield* Console.log(
    Checks.renderChecks(
      `Targets (docs/targets.md)${which === "quick" ? " — quick samples are small, see pnpm bench for the figures" : ""}:`,
      Checks.targets(measured, environment, only === undefined),
      "MISS"
    )
  )
  yield* Console.log(`\n${only === undefined ? "wrote" : `merged ${only.join(", ")} into`} ${file}`)
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
