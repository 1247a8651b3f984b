import { execFile } from "node:child_process"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const root = path.join(__dirname, "..")
const tsx = path.join(root, "node_modules", ".bin", "tsx")
/**
 * Guards that only catch a hang. Each test starts tsx, which transpiles the quickstart and its dependencies: 11-20 s
 * per test at load 6-9 on this 2-core machine, too close to vitest's default 30 s. The child is killed first (a
 * failed exit code, with its stderr in the message), the test's own timeout after that.
 */
const CHILD_TIMEOUT = 120_000
const TIMEOUT = 150_000

/** Runs the quickstart as `pnpm demo` does, with no ZAPIER_* variables, and returns its exit code and output. */
const quickstart = (...args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ZAPIER_")))
    const child = execFile(
      tsx,
      ["src/main.ts", ...args],
      { cwd: root, env, timeout: CHILD_TIMEOUT },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

describe("quickstart (pnpm demo)", { timeout: TIMEOUT }, () => {
  it.live("walks the five steps against the embedded fake Zapier and exits 0", () =>
    Effect.gen(function* () {
      const { code, stderr, stdout } = yield* quickstart()
      assert.strictEqual(code, 0, stderr)
      for (const step of [
        "[1/5] Token exchange",
        "[2/5] Connections: 0",
        "[3/5] Connect: ConnectionRequired (missing)"
      ]) {
        assert.include(stdout, step)
      }
      assert.match(stdout, /completeConnection verified connection \d+/)
      // The chosen action's fields are listed before it runs, one line each.
      assert.match(stdout, /send_channel_message takes 5 input field\(s\)/)
      assert.include(stdout, "· channel (Channel): string, required, dropdown\n")
      assert.include(stdout, "· text (Message Text): string, required, multiline\n")
      assert.include(stdout, '· send_as_bot (Send as a Bot?): boolean, default "false", changes the other fields\n')
      assert.include(stdout, "· mentions (Mention Users): list of string\n")
      assert.isBelow(stdout.indexOf("· channel (Channel)"), stdout.indexOf("[4/5] Run:"))
      assert.match(stdout, /\[4\/5\] Run: looked up send_channel_message → fresh action id \S+; created run \S+/)
      assert.match(stdout, /poll: waiting/)
      assert.match(stdout, /poll: success/)
      assert.include(stdout, 'Result: [{"ok":true,"channel":"#general","text":"Hello from effect-zapier"')
      assert.match(stdout, /POST \/v2\/action-runs\/ ×1/)
      assert.match(stdout, /POST \/oauth\/token ×2/, "one access-token exchange and one connect-token exchange")
      // The connect token is never printed, the access token only as <redacted>.
      assert.notMatch(stdout, /token=(?!<redacted>)/)
      assert.include(stdout, "access token (<redacted>")
    })
  )

  it.live("runs another action chosen by arguments", () =>
    Effect.gen(function* () {
      const { code, stderr, stdout } = yield* quickstart(
        "--app",
        "formatter",
        "--action",
        "uppercase",
        "--inputs",
        '{"text":"shout"}'
      )
      assert.strictEqual(code, 0, stderr)
      assert.include(stdout, "uppercase takes 1 input field(s)")
      assert.include(stdout, "· text (Text): string, required\n")
      assert.include(stdout, 'Result: [{"output":"SHOUT"}]')
    })
  )

  it.live("--trigger walks the Trigger Inbox flow: inbox ensured and active, events handled and acked", () =>
    Effect.gen(function* () {
      const { code, stderr, stdout } = yield* quickstart("--trigger", "new_channel_message", "--events", "3")
      assert.strictEqual(code, 0, stderr)
      assert.include(stdout, "[2/5] Triggers of slack (its READ actions): list_channels, new_channel_message")
      assert.include(stdout, "· channel (Channel): string, required, dropdown\n")
      assert.match(stdout, /\[3\/5\] Inbox "quickstart-demo" ensured \(idempotent by key\) and active/)
      assert.strictEqual(stdout.match(/→ acked/g)?.length, 3)
      assert.include(stdout, "[5/5] 3 event(s) handled and acknowledged")
      assert.match(stdout, /PUT \/inboxes ×1/)
      assert.match(stdout, /POST \/inboxes\/\{id\}\/messages\/ack ×1/, "one ack for the batch")
      assert.notMatch(stdout, /token=(?!<redacted>)/)
    })
  )

  it.live("fails with exit 1 and a typed error for an unknown action", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* quickstart("--action", "no_such_action")
      assert.strictEqual(code, 1)
      assert.include(stderr, 'ActionNotFound: App slack has no WRITE action with key "no_such_action"')
      assert.include(stderr, "slack offers (--action): send_channel_message (--type WRITE),")
    })
  )

  it.live("says an unknown app is unknown and lists the apps offered", () =>
    Effect.gen(function* () {
      const { code, stderr, stdout } = yield* quickstart("--app", "nope")
      assert.strictEqual(code, 1)
      assert.include(stderr, 'NotFound: there is no app "nope". Apps offered (--app): slack (Slack),')
      assert.notInclude(stdout, "[3/5]", "nothing is connected for an app that does not exist")
    })
  )

  it.live("refuses malformed arguments with a message", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* quickstart("--inputs", "not json")
      assert.strictEqual(code, 1)
      assert.include(stderr, "--inputs must be a JSON object")
    })
  )
})
