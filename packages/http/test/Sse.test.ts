import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Sse from "../src/internal/sse.js"

const read = (chunks: ReadonlyArray<string>, maxLine = 1024) => {
  const reader = Sse.makeReader()
  const frames = chunks.flatMap((c) => [...Sse.feed(reader, c, maxLine)])
  return { frames, skipped: reader.skipped }
}

describe("the event-stream reader", () => {
  it("reads data frames and keep-alive comments", () => {
    const { frames } = read([": keep-alive\n\ndata: {}\n\n: keep-alive\n\ndata\n\n"])
    assert.deepStrictEqual(frames, ["comment", "data", "comment", "data"])
  })

  it("accepts \\r\\n and \\r line ends, also split across chunks", () => {
    assert.deepStrictEqual(read(["data: 1\r\n\r\ndata: 2\r\rdata: 3\r", "\n\r", "\n"]).frames, ["data", "data", "data"])
  })

  it("ignores other fields and unknown lines, and a frame without an end", () => {
    const { frames } = read(["event: ping\nid: 7\nretry: 1000\n\ngarbage\n\ndata: x"])
    assert.deepStrictEqual(frames, [])
  })

  it("skips a frame with a line over the cap, keeping memory bounded, and goes on", () => {
    const huge = "x".repeat(5000)
    const { frames, skipped } = read([`data: ${huge.slice(0, 2000)}`, `${huge}\n\ndata: ok\n\n`], 1024)
    assert.deepStrictEqual(frames, ["data"])
    assert.strictEqual(skipped, 1)
  })

  it("never throws and gives the same frames however the bytes are split (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.constant("data: {}\n\n"), fc.constant(": keep-alive\n\n"), fc.constant("data: a\r\n\r\n"))
        ),
        fc.array(fc.nat(40)),
        (frames, cuts) => {
          const text = frames.join("")
          const chunks: Array<string> = []
          let at = 0
          for (const cut of cuts) {
            const next = Math.min(text.length, at + cut)
            chunks.push(text.slice(at, next))
            at = next
          }
          chunks.push(text.slice(at))
          const expected = frames.map((f) => (f.startsWith(":") ? "comment" : "data"))
          assert.deepStrictEqual(read(chunks).frames, expected)
        }
      )
    )
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (noise) => {
        read([noise, "\n\ndata: ok\n\n"], 64)
      })
    )
  })
})
