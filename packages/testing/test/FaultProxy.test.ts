import * as Http from "node:http"
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { FaultProxy } from "../src/index.js"

// Real sockets on 127.0.0.1 and the real clock: every test here is `it.scopedLive`.

interface Seen {
  readonly method: string
  readonly url: string
  readonly body: string
  readonly at: number
}

const BIG = 10_000

/** A plain node:http upstream that records every request it processed. */
const upstream = Effect.acquireRelease(
  Effect.async<{ readonly server: Http.Server; readonly port: number; readonly seen: Array<Seen>; sockets: number }>(
    (resume) => {
      const seen: Array<Seen> = []
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString()
          seen.push({ method: req.method ?? "", url: req.url ?? "", body, at: performance.now() })
          const payload =
            req.url === "/big" ? Buffer.alloc(BIG, "x") : Buffer.from(JSON.stringify({ ok: true, url: req.url, body }))
          res.writeHead(200, { "content-type": "application/json", "content-length": payload.length })
          res.end(payload)
        })
      })
      const state = { server, port: 0, seen, sockets: 0 }
      server.on("connection", () => {
        state.sockets++
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        state.port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed(state))
      })
    }
  ),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

interface Outcome {
  readonly status: number | undefined
  readonly contentLength: number | undefined
  readonly body: Buffer
  /** The error code (ECONNRESET, ECONNREFUSED, CLIENT_TIMEOUT, …), when the exchange failed. */
  readonly error: string | undefined
  readonly elapsed: number
}

/** One request with node's http client; never fails: the outcome says what happened. */
const request = (
  port: number,
  options: {
    readonly path?: string
    readonly body?: string
    readonly timeout?: number
    readonly agent?: Http.Agent
  } = {}
) =>
  Effect.async<Outcome>((resume) => {
    const started = performance.now()
    const chunks: Array<Buffer> = []
    let status: number | undefined
    let contentLength: number | undefined
    let settled = false
    const finish = (error: string | undefined) => {
      if (settled) return
      settled = true
      resume(
        Effect.succeed({
          status,
          contentLength,
          body: Buffer.concat(chunks),
          error,
          elapsed: performance.now() - started
        })
      )
    }
    const codeOf = (error: Error) => ("code" in error && typeof error.code === "string" ? error.code : error.message)
    const req = Http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.body === undefined ? "GET" : "POST",
        path: options.path ?? "/",
        agent: options.agent ?? false,
        headers:
          options.body === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(options.body) }
      },
      (res) => {
        status = res.statusCode
        contentLength = res.headers["content-length"] ? Number(res.headers["content-length"]) : undefined
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => finish(res.complete ? undefined : "INCOMPLETE"))
        res.on("error", (error) => finish(codeOf(error)))
      }
    )
    req.on("error", (error) => finish(codeOf(error)))
    if (options.timeout !== undefined) {
      req.setTimeout(options.timeout, () => {
        req.destroy(Object.assign(new Error("client-side timeout"), { code: "CLIENT_TIMEOUT" }))
      })
    }
    req.end(options.body)
    return Effect.sync(() => req.destroy())
  })

const setup = Effect.gen(function* () {
  const up = yield* upstream
  const proxy = yield* FaultProxy.make({ upstream: { port: up.port } })
  return { up, proxy }
})

describe("FaultProxy", () => {
  it.scopedLive("passes requests and responses through and counts the bytes", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      assert.strictEqual(proxy.url, `http://127.0.0.1:${proxy.port}`)
      const outcome = yield* request(proxy.port, { path: "/runs", body: '{"a":1}' })
      assert.isUndefined(outcome.error)
      assert.strictEqual(outcome.status, 200)
      assert.deepStrictEqual(JSON.parse(outcome.body.toString()), { ok: true, url: "/runs", body: '{"a":1}' })
      assert.strictEqual(up.seen.length, 1)
      const fetched = yield* Effect.promise(() => fetch(`${proxy.url}/fetch`).then((r) => r.json()))
      assert.deepStrictEqual(fetched, { ok: true, url: "/fetch", body: "" })
      const stats = yield* proxy.stats
      assert.strictEqual(stats.connections, 2)
      assert.isAbove(stats.bytesFromClient, 0)
      assert.strictEqual(stats.bytesToUpstream, stats.bytesFromClient)
      assert.isAbove(stats.bytesFromUpstream, 0)
      assert.strictEqual(stats.bytesToClient, stats.bytesFromUpstream)
      assert.strictEqual(stats.faults.PassThrough, 2)
    })
  )

  it.scopedLive("latency delays each direction by at least the configured time", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      const baseline = yield* request(proxy.port)
      assert.strictEqual(baseline.status, 200)
      yield* proxy.setFault(
        FaultProxy.latency({ request: "150 millis", response: { delay: "200 millis", jitter: "50 millis" } })
      )
      const sent = performance.now()
      const outcome = yield* request(proxy.port, { path: "/slow" })
      assert.isUndefined(outcome.error)
      assert.strictEqual(outcome.status, 200)
      const arrived = up.seen[1].at - sent
      assert.isAtLeast(arrived, 145, "the request reached the upstream after the request latency")
      assert.isAtLeast(outcome.elapsed, 150 + 150 - 5, "request latency + response latency (minus jitter)")
      assert.isBelow(outcome.elapsed, 10_000) // far below a stall; a loaded machine only adds a little
      // (No comparison with the baseline's time: a stall of this process during the baseline would make it the
      // slower one; the lower bounds above already show the latency was added.)
      assert.strictEqual((yield* proxy.stats).faults.Latency, 1)
    })
  )

  it.scopedLive("hang: the client times out; the upstream sees nothing (or, with forwardRequest, processes it)", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.hang())
      const hung = yield* request(proxy.port, { path: "/hang", timeout: 300 })
      assert.strictEqual(hung.error, "CLIENT_TIMEOUT")
      assert.isAtLeast(hung.elapsed, 290)
      assert.strictEqual(hung.body.length, 0)
      assert.strictEqual(up.seen.length, 0)
      assert.strictEqual(up.sockets, 0)

      yield* proxy.setFault(FaultProxy.hang({ forwardRequest: true }))
      const forwarded = yield* request(proxy.port, { path: "/runs", body: "{}", timeout: 300 })
      assert.strictEqual(forwarded.error, "CLIENT_TIMEOUT")
      assert.strictEqual(forwarded.status, undefined)
      assert.deepStrictEqual(
        up.seen.map((s) => s.url),
        ["/runs"]
      )
      const stats = yield* proxy.stats
      assert.strictEqual(stats.faults.Hang, 2)
      assert.isAbove(stats.bytesFromUpstream, 0)
      assert.strictEqual(stats.bytesToClient, 0)
    })
  )

  it.scopedLive("reset before the request is read: ECONNRESET, and the upstream sees nothing", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.resetBeforeRequest)
      const outcome = yield* request(proxy.port, { path: "/runs", body: '{"x":1}' })
      assert.strictEqual(outcome.error, "ECONNRESET")
      assert.strictEqual(outcome.status, undefined)
      assert.strictEqual(up.seen.length, 0)
      assert.strictEqual(up.sockets, 0)
      const stats = yield* proxy.stats
      assert.isAbove(stats.bytesFromClient, 0)
      assert.strictEqual(stats.bytesToUpstream, 0)
      assert.strictEqual(stats.faults.ResetBeforeRequest, 1)
    })
  )

  it.scopedLive("reset after the request: the upstream processed it, the client gets ECONNRESET and no byte", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.resetAfterRequest)
      const outcome = yield* request(proxy.port, { path: "/runs", body: '{"x":1}' })
      assert.strictEqual(outcome.error, "ECONNRESET")
      assert.strictEqual(outcome.status, undefined)
      assert.deepStrictEqual(
        up.seen.map((s) => [s.method, s.url, s.body]),
        [["POST", "/runs", '{"x":1}']]
      )
      const stats = yield* proxy.stats
      assert.isAbove(stats.bytesFromUpstream, 0)
      assert.strictEqual(stats.bytesToClient, 0)
      assert.strictEqual(stats.faults.ResetAfterRequest, 1)
    })
  )

  it.scopedLive("truncation: the body is shorter than Content-Length and the client sees the cut", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.truncate(500))
      const outcome = yield* request(proxy.port, { path: "/big" })
      assert.strictEqual(outcome.status, 200)
      assert.strictEqual(outcome.contentLength, BIG)
      assert.isDefined(outcome.error)
      assert.isAbove(outcome.body.length, 0)
      assert.isBelow(outcome.body.length, 500)
      assert.strictEqual(up.seen.length, 1)
      assert.strictEqual((yield* proxy.stats).bytesToClient, 500)
      // fetch (undici) sees the same cut as a failed body read
      const viaFetch = yield* Effect.tryPromise(() => fetch(`${proxy.url}/big`).then((r) => r.arrayBuffer())).pipe(
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(viaFetch))
      assert.strictEqual((yield* proxy.stats).faults.Truncate, 2)
    })
  )

  it.scopedLive("slow body: the response arrives complete, at the configured bandwidth", () =>
    Effect.gen(function* () {
      const { proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.slowBody(20_000))
      const outcome = yield* request(proxy.port, { path: "/big" })
      assert.isUndefined(outcome.error)
      assert.strictEqual(outcome.body.length, BIG)
      // 10,000 bytes of body (and the headers) at 20,000 bytes/s: at least 0.5 s
      assert.isAtLeast(outcome.elapsed, 480)
      // Far below what a stalled body would take; a loaded machine only delays the slices a little.
      assert.isBelow(outcome.elapsed, 10_000)
      // An idle timeout would not fire (bytes keep coming); an overall deadline does. The idle timeout is 20 slices
      // (1 s) so a busy event loop does not trip it; the body at 5,000 bytes/s takes 2 s, well past it.
      yield* proxy.setFault(FaultProxy.slowBody(5_000))
      const idle = yield* request(proxy.port, { path: "/big", timeout: 1_000 })
      assert.isUndefined(idle.error)
      assert.isAtLeast(idle.elapsed, 1_900)
      const deadline = yield* request(proxy.port, { path: "/big" }).pipe(Effect.timeout("200 millis"), Effect.exit)
      assert.isTrue(Exit.isFailure(deadline))
      assert.strictEqual((yield* proxy.stats).faults.SlowBody, 3)
    })
  )

  it.scopedLive("refuse: connects fail with ECONNREFUSED until the fault is cleared, on the same port", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.refuse)
      const refused = yield* request(proxy.port)
      assert.strictEqual(refused.error, "ECONNREFUSED")
      yield* proxy.clear
      const back = yield* request(proxy.port, { path: "/back" })
      assert.isUndefined(back.error)
      assert.strictEqual(back.status, 200)
      assert.deepStrictEqual(
        up.seen.map((s) => s.url),
        ["/back"]
      )
      assert.strictEqual((yield* proxy.stats).faults.Refuse, 1)
    })
  )

  it.scopedLive("refuse drops the open connections, as a server going down does", () =>
    Effect.gen(function* () {
      const { proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.hang())
      const hanging = yield* Effect.fork(request(proxy.port, { path: "/hang" }))
      // Waits until the proxy holds the connection (its own signal); the timeout only catches a hang.
      const held = yield* proxy.until((s) => s.faults.Hang >= 1).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(held.open, 1)
      yield* proxy.setFault(FaultProxy.refuse)
      const outcome = yield* Fiber.join(hanging)
      assert.isDefined(outcome.error)
      assert.strictEqual((yield* proxy.stats).open, 0)
    })
  )

  it.scopedLive("accept and close: the connection closes before anything is read", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.acceptAndClose)
      const outcome = yield* request(proxy.port, { path: "/runs", body: "{}" })
      assert.strictEqual(outcome.error, "ECONNRESET") // node reports "socket hang up" with this code
      assert.strictEqual(outcome.status, undefined)
      assert.strictEqual(up.seen.length, 0)
      assert.strictEqual((yield* proxy.stats).faults.AcceptAndClose, 1)
    })
  )

  it.scopedLive("until: completes on the change itself (a connection accepted, then closed), not before", () =>
    Effect.gen(function* () {
      const { proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.hang())
      const accepted = yield* Effect.fork(proxy.until((s) => s.faults.Hang >= 1))
      const closed = yield* Effect.fork(proxy.until((s) => s.connections >= 1 && s.open === 0))
      yield* Effect.yieldNow()
      assert.isNull(accepted.unsafePoll(), "nothing happened yet")
      // A raw socket, closed by the client once the proxy has accepted it.
      const socket = Net.connect({ host: "127.0.0.1", port: proxy.port })
      socket.on("error", () => {})
      const seen = yield* Fiber.join(accepted).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(seen.open, 1)
      assert.isNull(closed.unsafePoll(), "still open")
      socket.destroy()
      const after = yield* Fiber.join(closed).pipe(Effect.timeout("30 seconds"))
      assert.strictEqual(after.open, 0)
      // Already true: completes at once.
      assert.strictEqual((yield* proxy.until((s) => s.open === 0)).connections, 1)
    })
  )

  it.scopedLive("resets are TCP resets; accept-and-close is an orderly close", () =>
    Effect.gen(function* () {
      const { proxy } = yield* setup
      /** How a raw socket sending one request ends: "reset" (an error) or "closed" (FIN), and what it received. */
      const raw = Effect.async<{ readonly end: string; readonly received: number }>((resume) => {
        let received = 0
        const socket = Net.connect({ host: "127.0.0.1", port: proxy.port }, () => {
          socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        })
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length
        })
        socket.on("error", (error) =>
          resume(Effect.succeed({ end: "code" in error ? String(error.code) : error.message, received }))
        )
        socket.on("end", () => resume(Effect.succeed({ end: "closed", received })))
        return Effect.sync(() => socket.destroy())
      })
      yield* proxy.setFault(FaultProxy.resetBeforeRequest)
      assert.deepStrictEqual(yield* raw, { end: "ECONNRESET", received: 0 })
      yield* proxy.setFault(FaultProxy.resetAfterRequest)
      assert.deepStrictEqual(yield* raw, { end: "ECONNRESET", received: 0 })
      yield* proxy.setFault(FaultProxy.acceptAndClose)
      assert.deepStrictEqual(yield* raw, { end: "closed", received: 0 })
      yield* proxy.clear
      const ok = yield* raw
      assert.strictEqual(ok.end, "closed")
      assert.isAbove(ok.received, 0)
    })
  )

  it.scopedLive("a fault for one connection ordinal leaves the others alone", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      yield* proxy.setFault(FaultProxy.resetBeforeRequest, { connection: 2 })
      yield* proxy.setFault(FaultProxy.resetAfterRequest, { connection: [4] })
      const outcomes = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => request(proxy.port, { path: `/${i}` }))
      assert.deepStrictEqual(
        outcomes.map((o) => o.error),
        [undefined, "ECONNRESET", undefined, "ECONNRESET", undefined]
      )
      assert.deepStrictEqual(
        up.seen.map((s) => s.url),
        ["/1", "/3", "/4", "/5"]
      )
      const stats = yield* proxy.stats
      assert.strictEqual(stats.connections, 5)
      assert.strictEqual(stats.faults.ResetBeforeRequest, 1)
      assert.strictEqual(stats.faults.ResetAfterRequest, 1)
      assert.strictEqual(stats.faults.PassThrough, 3)
    })
  )

  it.scopedLive("a kept-alive connection takes the fault in place at its next request", () =>
    Effect.gen(function* () {
      const { up, proxy } = yield* setup
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() => new Http.Agent({ keepAlive: true, maxSockets: 1 })),
        (a) => Effect.sync(() => a.destroy())
      )
      const first = yield* request(proxy.port, { path: "/first", agent })
      assert.isUndefined(first.error)
      yield* proxy.setFault(FaultProxy.resetBeforeRequest)
      const second = yield* request(proxy.port, { path: "/second", agent })
      assert.strictEqual(second.error, "ECONNRESET")
      const stats = yield* proxy.stats
      assert.strictEqual(stats.connections, 1, "the same connection carried both requests")
      assert.deepStrictEqual(
        up.seen.map((s) => s.url),
        ["/first"]
      )
    })
  )

  it.scopedLive("closing the scope closes the listener and every open connection", () =>
    Effect.gen(function* () {
      const up = yield* upstream
      const { port, hanging } = yield* Effect.scoped(
        Effect.gen(function* () {
          const proxy = yield* FaultProxy.make({ upstream: `http://127.0.0.1:${up.port}` })
          yield* proxy.setFault(FaultProxy.hang())
          const hanging = yield* Effect.forkDaemon(request(proxy.port, { path: "/hang" }))
          // Waits until the proxy holds the connection (its own signal); the timeout only catches a hang.
          const held = yield* proxy.until((s) => s.faults.Hang >= 1).pipe(Effect.timeout("30 seconds"))
          assert.strictEqual(held.open, 1)
          return { port: proxy.port, hanging }
        })
      )
      const cut = yield* Fiber.join(hanging)
      assert.isDefined(cut.error)
      const after = yield* request(port)
      assert.strictEqual(after.error, "ECONNREFUSED")
    })
  )

  it.scopedLive("a bad upstream is a FaultProxyError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(FaultProxy.make({ upstream: "not a url" }))
      assert.strictEqual(error._tag, "FaultProxyError")
      assert.include(error.message, "not a URL")
      const port = yield* Effect.flip(FaultProxy.make({ upstream: { port: 70_000 } }))
      assert.include(port.message, "not a TCP port")
    })
  )

  it.scopedLive("an upstream that refuses closes the client connection", () =>
    Effect.gen(function* () {
      const free = yield* Effect.async<number>((resume) => {
        const server = Net.createServer()
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const proxy = yield* FaultProxy.make({ upstream: { port: free } })
      const outcome = yield* request(proxy.port, { timeout: 2000 })
      assert.strictEqual(outcome.error, "ECONNRESET")
      assert.strictEqual((yield* proxy.stats).open, 0)
    })
  )
})
