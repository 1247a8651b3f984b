/**
 * Canary tests: every domain value and error of core that holds a secret (a Connect link's token, an access token,
 * a connect token) is printed without it by every way a program or a library prints values: `String`,
 * `JSON.stringify`, `util.inspect` (default and unlimited depth, as `console.log` does), `Cause.pretty`,
 * `util.inspect` of an `Exit`, and Effect's loggers (`Logger.pretty`, `logfmt`, `json`, `structured`) captured.
 */
import { inspect } from "node:util"
import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { Domain, Errors } from "@effect-zapier/core"
import { Cause, DateTime, Effect, Exit, Logger, Option, Redacted } from "effect"

const CANARY = "CANARY-connect-token-5b1f0e"
const ACCESS = "CANARY-access-token-a9d2c4"
const CONNECT = "CANARY-connect-value-77e013"
const app = Domain.AppId.make("slack")
const at = DateTime.unsafeMake(1_700_000_000_000)

const link = Domain.ConnectLink.make({
  url: `https://connect.zapier.com/to/slack?token=${CANARY}&redirect_uri=https%3A%2F%2Fp.example%2Fcb`,
  app,
  expiresAt: at,
  reconnect: Domain.ConnectionId.make("c-1"),
  state: "state-1"
})
const required = new Errors.ConnectionRequired({ app, reason: "expired", link })
const accessToken = Domain.AccessToken.make({ value: Redacted.make(ACCESS), expiresAt: at, scope: "external" })
const connectToken = Domain.ConnectToken.make({ value: Redacted.make(CONNECT), expiresAt: at, app })

const canaries = [CANARY, ACCESS, CONNECT]
const values: ReadonlyArray<readonly [string, unknown]> = [
  ["ConnectLink", link],
  ["ConnectionRequired with a link", required],
  ["AccessToken", accessToken],
  ["ConnectToken", connectToken],
  ["a ConnectLink in an Option", Option.some(link)],
  ["a ConnectLink nested in plain data", { deep: { deeper: [{ link }] } }]
]

/** Every string form of `value` a program may print. */
const printed = (value: unknown): ReadonlyArray<readonly [string, string]> => [
  ["String", String(value)],
  ["JSON.stringify", JSON.stringify(value) ?? ""],
  ["util.inspect", inspect(value)],
  ["util.inspect (depth Infinity)", inspect(value, { depth: Infinity })],
  ["Cause.pretty (fail)", Cause.pretty(Cause.fail(value))],
  ["Cause.pretty (die)", Cause.pretty(Cause.die(value))],
  ["util.inspect(Exit.fail)", inspect(Exit.fail(value), { depth: Infinity })],
  ["util.inspect(Exit.succeed)", inspect(Exit.succeed(value), { depth: Infinity })],
  ["JSON.stringify(Exit.fail)", JSON.stringify(Exit.fail(value))]
]

const assertClean = (what: string, text: string) => {
  for (const canary of canaries) assert.notInclude(text, canary, what)
}

describe("secrets in core's values and errors", () => {
  for (const [name, value] of values) {
    it(`${name}: no token in any printed form`, () => {
      for (const [sink, text] of printed(value)) assertClean(`${name} via ${sink}`, text)
    })
  }

  it("the link still carries its token where it is read on purpose", () => {
    assert.include(link.url, CANARY)
    assert.strictEqual(Redacted.value(accessToken.value), ACCESS)
  })

  describe("Effect's loggers (captured)", () => {
    afterEach(() => {
      vi.restoreAllMocks()
    })

    const capture = () => {
      const lines: Array<string> = []
      const record = (...args: ReadonlyArray<unknown>) => {
        lines.push(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: Infinity }))).join(" "))
      }
      for (const method of ["log", "info", "warn", "error", "debug", "trace", "group", "groupCollapsed"] as const) {
        vi.spyOn(console, method).mockImplementation(record)
      }
      return lines
    }

    const logEverything = Effect.gen(function* () {
      for (const [name, value] of values) {
        yield* Effect.logInfo(name, value)
        yield* Effect.logError(name, Cause.fail(value))
        yield* Effect.logWarning(name).pipe(Effect.annotateLogs("value", value))
      }
      yield* Effect.logError("failed", Cause.fail(required))
      yield* Effect.log(yield* Effect.exit(Effect.fail(required)))
    })

    for (const [name, logger] of [
      ["Logger.pretty", Logger.pretty],
      ["Logger.logFmt", Logger.logFmt],
      ["Logger.json", Logger.json],
      ["Logger.structured", Logger.structured]
    ] as const) {
      it.effect(`${name}: no token in any line`, () =>
        Effect.gen(function* () {
          const lines = capture()
          yield* logEverything.pipe(Effect.provide(logger))
          assert.isAtLeast(lines.length, values.length * 3, "the logger was captured")
          assert.isTrue(
            lines.some((l) => l.includes("slack")),
            "the values were logged"
          )
          for (const line of lines) assertClean(name, line)
        })
      )
    }
  })
})
