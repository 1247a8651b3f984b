/**
 * The memory scenario's control, in its own process (started by `memory.ts` with `--expose-gc`): the same calls as
 * the library's runs, straight on `FakeZapier.layer`'s services. Argument: `{runs, concurrency}` as JSON; prints
 * `{growth, failures}` as JSON.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Memory from "./memory.js"

const Options = Schema.parseJson(Schema.Struct({ runs: Schema.Int, concurrency: Schema.Int }))

const main = Effect.gen(function* () {
  const options = yield* Schema.decodeUnknown(Options)(process.argv[2] ?? "")
  const result = yield* Memory.control(options)
  const json = yield* Schema.encode(Memory.ControlResult)(result)
  yield* Effect.sync(() => process.stdout.write(json))
})

Effect.runPromiseExit(main).then((exit) => {
  if (exit._tag === "Failure") process.stderr.write(`memory control failed: ${String(exit.cause)}\n`)
  process.exit(exit._tag === "Failure" ? 1 : 0)
})
