/**
 * 6. Memory: heap growth after garbage collection across `runs` runs of `EmbeddedActions.run` on
 * `FakeZapier.layer` (in memory, live clock; needs `node --expose-gc`).
 *
 * The runs are the whole flow (stored connection listed, fresh action id, create, poll) of an action scripted
 * `RunScript.succeed(0)`, polled with the default policy except a 1 ms first wait (so 100,000 runs take seconds,
 * not hours; the same Schedule code runs). 64 at a time, in batches of 1,000, the fake's ledger emptied after each
 * batch (it records every request by design).
 *
 * The fake itself keeps runs and issued action ids (its newest 10,000 of each, `Seed.retention`), which is not the
 * library's memory. So the
 * same calls are also made straight on the fake's services (list, resolve, create, get) as a control (in a child
 * process, at the same time: the machine has two cores), and the
 * library's growth is the difference: `heapGrowthMB = (library run) − (control run)`. After the library's layers
 * are closed, the heap is compared with the start again, and the active handles are listed.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { ActionCatalog, ActionRuns, Connections, EmbeddedActions, Polling } from "@effect-zapier/core"
import { FakeZapier } from "@effect-zapier/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Seed from "./seed.js"

export interface Options {
  readonly runs: number
  readonly concurrency: number
}

export interface Result {
  readonly runs: number
  /** The library's growth: the library run's growth minus the control's. */
  readonly heapGrowthMB: number
  /** Growth with the library, layers still open (includes what the fake keeps). */
  readonly withLibraryMB: number
  /** Growth of the control (the same calls on the fake alone). */
  readonly fakeOnlyMB: number
  /** Heap after the library's layers closed, against before they were built. */
  readonly afterDisposeMB: number
  /** `process.getActiveResourcesInfo()` after the layers closed that were not there before they were built. */
  readonly activeResourcesAfterDispose: ReadonlyArray<string>
  readonly failures: number
}

const users = 100
const batch = 1_000

const heapMB = Effect.suspend(() => {
  const gc = globalThis.gc
  if (gc === undefined) return Effect.dieMessage("the memory scenario needs node --expose-gc")
  return Effect.sync(() => {
    gc()
    gc()
    return process.memoryUsage().heapUsed / 2 ** 20
  })
})

const policy: Polling.PolicyShape = { ...Polling.defaults, initialDelay: Duration.millis(1) }

/** `n` runs in batches; `one(i)` is one run; returns the failures. */
const batches = <E, R>(n: number, concurrency: number, one: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function* () {
    const zapier = yield* FakeZapier.FakeZapier
    let failures = 0
    for (let from = 0; from < n; from += batch) {
      const outcomes = yield* Effect.forEach(
        Array.from({ length: Math.min(batch, n - from) }),
        (_, k) => Effect.either(one(from + k)),
        { concurrency }
      )
      failures += outcomes.filter((o) => o._tag === "Left").length
      yield* zapier.resetLedger
    }
    return failures
  })

/** Growth of the heap across `n` runs made by `one`, after n / 10 (at most 2,000) warm-up runs. */
const growth = <E, R>(n: number, concurrency: number, one: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function* () {
    yield* batches(Math.min(2_000, Math.ceil(n / 10)), concurrency, one)
    const before = yield* heapMB
    const failures = yield* batches(n, concurrency, one)
    return { growth: (yield* heapMB) - before, failures }
  })

const viaLibrary = (i: number) =>
  Effect.flatMap(EmbeddedActions.EmbeddedActions, (actions) =>
    actions.run({ user: Seed.user(i % users), app: Seed.app, action: Seed.action, inputs: { i } })
  )

const viaFake = (i: number) =>
  Effect.gen(function* () {
    const connections = yield* Connections.Connections
    const catalog = yield* ActionCatalog.ActionCatalog
    const runs = yield* ActionRuns.ActionRuns
    const user = Seed.user(i % users)
    const connection = (yield* connections.list(user, Seed.app))[0]!
    const action = yield* catalog.resolve(user, Seed.app, Seed.action, "WRITE")
    const runId = yield* runs.create(user, { action: action.id, connection: connection.id, inputs: { i } })
    yield* Effect.sleep(Duration.millis(1))
    return yield* runs.get(user, runId)
  })

/** The control: the same calls on the fake alone (run in a child process, `memoryControl.ts`). */
export const control = (options: Options) =>
  growth(options.runs, options.concurrency, viaFake).pipe(Effect.provide(Seed.inMemory(users)))

export const ControlResult = Schema.parseJson(Schema.Struct({ growth: Schema.Number, failures: Schema.Number }))

const controlModule = fileURLToPath(new URL("./memoryControl.ts", import.meta.url))

/** Runs the control in a child process (in parallel with the library's run: the machine has two cores). */
const controlInChild = (options: Options) =>
  Effect.async<string, Error>((resume) => {
    const child = execFile(
      process.execPath,
      [...process.execArgv, controlModule, JSON.stringify(options)],
      { maxBuffer: 1024 * 1024 },
      (error, stdout) => resume(error ? Effect.fail(error) : Effect.succeed(stdout))
    )
    return Effect.sync(() => child.kill())
  }).pipe(Effect.flatMap(Schema.decodeUnknown(ControlResult)))

export const run = (options: Options) =>
  Effect.gen(function* () {
    const controlled = yield* Effect.fork(controlInChild(options))
    // After an async boundary, so handles the caller opens right after starting this fiber (NodeRuntime.runMain's
    // keep-alive timer) are in the "before" list.
    yield* Effect.sleep(Duration.millis(1))
    const start = yield* heapMB
    const resourcesBefore = process.getActiveResourcesInfo()
    const library = yield* growth(options.runs, options.concurrency, viaLibrary).pipe(
      Effect.provideService(Polling.Policy, policy),
      Effect.provide(Seed.inMemory(users))
    )
    // Let the closed layers' last interrupted fibers and timers finish before the heap is read.
    yield* Effect.sleep(Duration.millis(200))
    const afterDispose = (yield* heapMB) - start
    const activeResourcesAfterDispose = [...process.getActiveResourcesInfo()]
    for (const r of resourcesBefore) {
      const i = activeResourcesAfterDispose.indexOf(r)
      if (i >= 0) activeResourcesAfterDispose.splice(i, 1)
    }
    const control = yield* Fiber.join(controlled)
    return {
      runs: options.runs,
      heapGrowthMB: library.growth - control.growth,
      withLibraryMB: library.growth,
      fakeOnlyMB: control.growth,
      afterDisposeMB: afterDispose,
      activeResourcesAfterDispose,
      failures: library.failures + control.failures
    } satisfies Result
  })
