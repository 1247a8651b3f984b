/**
 * Live mode's Connect link for the person at the terminal: printed with its token masked (terminal output ends up
 * in scrollback, logs and screenshots), the whole link in a file only this user can read.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { handOver } from "../src/Quickstart.js"

const CANARY = "CANARY-live-connect-token-3c9e"

describe("handOver (live mode)", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it.effect("prints the link with its token masked, and writes the whole link to a file only the user can read", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      vi.spyOn(console, "log").mockImplementation((...args: ReadonlyArray<unknown>) => {
        lines.push(args.map(String).join(" "))
      })
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "quickstart-handover-"))
      const url = `https://connect.zapier.com/to/slack?token=${CANARY}&state=abcdefghijkl`
      const file = yield* handOver(url, dir)
      const printed = lines.join("\n")
      assert.notInclude(printed, CANARY)
      assert.include(printed, "token=<redacted>")
      assert.include(printed, file)
      assert.strictEqual(Fs.readFileSync(file, "utf8").trim(), url)
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
      Fs.rmSync(dir, { recursive: true, force: true })
    })
  )
})
