/**
 * Starts runner processes (`runner.ts` under tsx) for the length of a scope and talks to them over IPC.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Deferred, Effect, Runtime, Schema, type Scope } from "effect"
import * as Protocol from "./protocol.js"

export class RunnerError extends Schema.TaggedError<RunnerError>()("RunnerError", { message: Schema.String }) {}

export interface Runner {
  readonly name: string
  /** Sends a request; fails when the runner is gone. */
  readonly ask: (
    request: Protocol.Request extends infer R ? DistributiveOmit<R, "id"> : never
  ) => Effect.Effect<Protocol.Reply, RunnerError>
  /** SIGKILL: no finalizer runs, its database sessions drop with it. */
  readonly kill: Effect.Effect<void>
  /** Completes when the process has exited. */
  readonly exited: Effect.Effect<number | null>
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

const runnerModule = fileURLToPath(new URL("./runner.ts", import.meta.url))
const packageDir = fileURLToPath(new URL("../..", import.meta.url))

/** Spawns a runner and waits until its layer is built (its shards are being acquired). */
export const spawn = (name: string, config: Protocol.RunnerConfig): Effect.Effect<Runner, RunnerError, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const ready = yield* Deferred.make<void, RunnerError>()
    const exited = yield* Deferred.make<number | null>()
    const pending = new Map<number, Deferred.Deferred<Protocol.Reply, RunnerError>>()
    const run = Runtime.runFork(runtime)
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        fork(runnerModule, [], {
          cwd: packageDir,
          execArgv: ["--import", "tsx"],
          env: { ...process.env, DURABLE_RUNNER: JSON.stringify(config) },
          stdio: ["ignore", "inherit", "inherit", "ipc"]
        })
      ),
      (child: ChildProcess) =>
        Effect.gen(function* () {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
          yield* Deferred.await(exited).pipe(Effect.timeout("10 seconds"), Effect.ignore)
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
    )
    child.on("exit", (code) => {
      const error = new RunnerError({ message: `runner ${name} exited (code ${code})` })
      run(Deferred.fail(ready, error))
      for (const waiter of pending.values()) run(Deferred.fail(waiter, error))
      pending.clear()
      run(Deferred.succeed(exited, code))
    })
    child.on("message", (message: unknown) => {
      if (Schema.is(Protocol.Ready)(message)) return run(Deferred.succeed(ready, undefined))
      if (!Schema.is(Protocol.Reply)(message)) return
      const waiter = pending.get(message.id)
      if (waiter === undefined) return
      pending.delete(message.id)
      run(Deferred.succeed(waiter, message))
    })
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: "150 seconds",
        onTimeout: () => new RunnerError({ message: `runner ${name} did not start` })
      })
    )
    let next = 0
    return {
      name,
      ask: (request) =>
        Effect.gen(function* () {
          const id = ++next
          const reply = yield* Deferred.make<Protocol.Reply, RunnerError>()
          pending.set(id, reply)
          const sent = child.connected && child.send({ ...request, id })
          if (!sent) {
            pending.delete(id)
            return yield* new RunnerError({ message: `runner ${name} is not connected` })
          }
          return yield* Deferred.await(reply)
        }),
      kill: Effect.sync(() => {
        child.kill("SIGKILL")
      }),
      exited: Deferred.await(exited)
    } satisfies Runner
  })

/** The reply's value, or a failure naming the runner's typed error. */
export const value = (reply: Protocol.Reply): Effect.Effect<string, RunnerError> =>
  reply.value !== undefined
    ? Effect.succeed(reply.value)
    : Effect.fail(new RunnerError({ message: `${reply.error ?? "no value"}: ${reply.detail ?? ""}` }))
