/**
 * The partner page in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
 * against the partner app and a fake Zapier, both started in this process on 127.0.0.1 (two origins, so the
 * popup's origin check is real; Chromium's popup blocker stays on).
 *
 * One journey, in order: log in, run with no connection (Connect opens in a popup, the user approves, the run
 * goes on and its result shows); expire the connection in the fake and run again (the reconnect path); run an
 * action that fails and see its error; Zapier announces the connection's expiry (a signed connection webhook) and
 * the page shows "expires on …, reconnect", whose link renews it; watch a trigger, and see the events the fake
 * emits arrive on the page (each acked at the fake). The page after the first successful run is saved as the README's screenshot
 * (docs/screenshot.png).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConnectionWebhooks } from "@effect-zapier/http"
import { FakeZapier } from "@effect-zapier/testing"
import { Context, DateTime, Effect, Exit, Option, Scope } from "effect"
import { type Browser, type BrowserContext, chromium, type Page, type Request } from "playwright-core"
import { webhookPath } from "../src/Webhooks.js"
import { dataDir, fakeZapier, freePort, options, partnerApp } from "./fixtures.js"

// Debian's chromium package; CHROMIUM_PATH overrides it (e.g. to check the missing-browser path).
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const hasChromium = Fs.existsSync(CHROMIUM)
const inCI = (process.env.CI ?? "") !== "" && process.env.CI !== "false"
const TIMEOUT = 60_000
const SCREENSHOT = Path.resolve(__dirname, "../docs/screenshot.png")

if (!hasChromium) {
  const reason = `${CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium)`
  if (inCI) {
    it("headless Chromium is installed for the browser tests", () => {
      assert.fail(`${reason}; .ci/run installs it, so CI must have it`)
    })
  } else {
    console.warn(`[partner-app] skipping the browser test: ${reason}`)
  }
}

interface ApiCalls {
  __apiInFlight: number
}

/**
 * Holds the first request to `pattern` that `matches` accepts until `release` is called: `holding` resolves with
 * its URL once the browser has sent it. Every other request to `pattern` goes through.
 */
const holdFirst = async (
  tab: Page,
  pattern: string,
  matches: (request: Request) => boolean = () => true
): Promise<{ readonly holding: Promise<string>; readonly release: () => void }> => {
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let held: ((url: string) => void) | undefined
  const holding = new Promise<string>((resolve) => {
    held = resolve
  })
  await tab.route(pattern, async (route) => {
    if (held !== undefined && matches(route.request())) {
      held(route.request().url())
      held = undefined
      await released
    }
    await route.continue()
  })
  return { holding, release }
}

/**
 * Runs in the page before its own scripts: counts the page's fetches in flight (`__apiInFlight`), but for the
 * watches poll (every 700 ms). A call counts until its body has been read; the page's `api` reads it and draws the
 * answer in the same microtask run, so when `quiet` sees 0 in a later task the answer is on the page.
 */
const countApiCalls = () => {
  const calls = window as unknown as ApiCalls
  calls.__apiInFlight = 0
  const original = window.fetch.bind(window)
  window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    const method = init?.method ?? (input instanceof Request ? input.method : "GET")
    if (method === "GET" && new URL(url, location.href).pathname === "/api/watches") return original(input, init)
    calls.__apiInFlight++
    let counted = true
    const done = () => {
      if (counted) calls.__apiInFlight--
      counted = false
    }
    return original(input, init).then(
      (response) => {
        const text = response.text.bind(response)
        response.text = () => text().finally(done)
        return response
      },
      (error: unknown) => {
        done()
        throw error
      }
    )
  }
}

describe.skipIf(!hasChromium)("the partner page in headless Chromium", () => {
  const scope = Effect.runSync(Scope.make())
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let url: string
  let zapier: FakeZapier.Control

  beforeAll(async () => {
    const started = await Effect.runPromise(
      Effect.gen(function* () {
        const fake = yield* fakeZapier()
        // The app receives connection-expiry webhooks: subscribed once, started with the subscription's secret.
        const port = yield* freePort
        const subscription = yield* Context.get(fake, ConnectionWebhooks.Subscriptions).create(
          FakeZapier.sample.user,
          `http://127.0.0.1:${port}${webhookPath}`
        )
        const webhookSecret = Option.getOrThrow(subscription.secret)
        const app = yield* partnerApp(fake, options(yield* dataDir, { port, webhookSecret }))
        return { url: app.url, zapier: Context.get(fake, FakeZapier.FakeZapier) }
      }).pipe(Scope.extend(scope))
    )
    url = started.url
    zapier = started.zapier
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Headless Chromium's default screen is 800×600, which would clamp a 980×700 popup.
        "--screen-info={1600x1200}"
      ],
      // Keep Chromium's popup blocker on: the page must open Connect within the Run click's user activation.
      ignoreDefaultArgs: ["--disable-popup-blocking"]
    })
    context = await browser.newContext({ viewport: { width: 1000, height: 1100 } })
    await context.addInitScript(countApiCalls)
    page = await context.newPage()
    page.on("pageerror", (error) => console.error(`[partner-app page] ${error.message}`))
  }, TIMEOUT)

  afterAll(async () => {
    await browser?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }, TIMEOUT)

  const text = async (selector: string) => (await page.locator(selector).textContent()) ?? ""
  /**
   * Waits until the page has no API call in flight (the watches poll aside): every load a select started (actions,
   * fields, connection, triggers) has answered and been drawn. The page draws what answers last, so a step taken
   * while an earlier load is still out can be undone by it (a stale fields load resets the JSON inputs just typed).
   */
  const quiet = () =>
    page.waitForFunction(() => (window as unknown as ApiCalls).__apiInFlight === 0, undefined, { timeout: 20_000 })
  const timeline = async () => (await page.locator("#timeline li").allInnerTexts()).map((s) => s.trim())

  /** Clicks Run, expects Connect in a popup (with `heading`), approves there, and waits for the popup to close. */
  const runThroughConnect = async (heading: RegExp) => {
    const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#run")])
    await popup.waitForLoadState("load")
    assert.match((await popup.locator("h1").textContent()) ?? "", heading)
    await popup.click("#approve")
    if (!popup.isClosed()) await popup.waitForEvent("close")
  }

  it(
    "logs in, runs without a connection, connects in the popup, and shows the result",
    async () => {
      await page.goto(url)
      await page.locator("#login").waitFor({ state: "visible" })
      await page.fill("#login-user", "u-42")
      await page.fill("#login-tenant", "acme")
      await page.click("#login-submit")
      await page.locator("#app-ui").waitFor({ state: "visible" })
      assert.strictEqual(await text("#whoami"), "u-42 @ acme")
      // The apps list arrives after the UI shows: wait for it rather than race it.
      await page.locator("#app option", { hasText: "Formatter" }).waitFor({ state: "attached" })
      assert.deepStrictEqual(await page.locator("#app option").allInnerTexts(), ["Slack", "Google Sheets", "Formatter"])

      // One select at a time, each once the page has drawn what it loaded: the first app's loads (actions, fields,
      // triggers) answering after a later select would reset the action, or the JSON inputs typed below.
      await quiet()
      await page.selectOption("#app", "slack")
      await quiet()
      await page.selectOption("#action", "send_channel_message")
      await quiet()
      await page.locator("#connection[data-state='missing']").waitFor()
      assert.match(await text("#connection-text"), /Not connected to Slack/)
      // Without a connection the fields are unknown: the inputs are typed as JSON.
      await page.locator("#json-inputs").waitFor({ state: "visible" })
      await page.fill("#inputs-json", JSON.stringify({ channel: "#general", text: "Hello from the partner app" }))

      // The run is held pending until the page has shown it waiting: its 2 s script alone could end before the
      // first read on a busy machine, and the page would never see "waiting".
      const gate = await Effect.runPromise(
        zapier.holdRuns(FakeZapier.sample.slack, FakeZapier.sample.sendChannelMessage)
      )
      await runThroughConnect(/^Connect Slack$/)
      await page
        .locator("#timeline li")
        .filter({ hasText: /^waiting$/ })
        .waitFor({ state: "attached", timeout: 20_000 })
      await Effect.runPromise(gate.release)

      await page.locator("#result").waitFor({ state: "visible", timeout: 20_000 })
      const result = JSON.parse(await text("#result")) as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(result, [
        { ok: true, channel: "#general", text: "Hello from the partner app", ts: "1711900000.000100" }
      ])
      const steps = await timeline()
      assert.deepStrictEqual(steps.slice(0, 3), ["starting", "connecting", "connected"])
      assert.include(steps, "created")
      assert.include(steps, "waiting") // Zapier's status while the run was pending
      assert.strictEqual(steps.at(-1), "success")
      assert.isTrue(await page.locator("#error").isHidden())

      // Connected now: the real form replaces the JSON, filled with what was run.
      await page.locator("#connection[data-state='connected']").waitFor()
      await page.locator("#field-channel").waitFor({ state: "visible" })
      assert.strictEqual(await page.locator("#field-channel").inputValue(), "#general")
      assert.strictEqual(await page.locator("#field-text").inputValue(), "Hello from the partner app")

      const connections = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      assert.strictEqual(connections.length, 1)
      assert.isFalse(connections[0]!.isExpired)

      Fs.mkdirSync(Path.dirname(SCREENSHOT), { recursive: true })
      const png = await page.screenshot({ path: SCREENSHOT, fullPage: true })
      assert.strictEqual(png.subarray(1, 4).toString("latin1"), "PNG")
    },
    TIMEOUT
  )

  it(
    "an expired connection: Run opens the reconnect flow, the same connection is re-validated, the run succeeds",
    async () => {
      const [connection] = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      await Effect.runPromise(zapier.expireConnection(connection!.id))

      await page.fill("#field-text", "Hello again")
      await runThroughConnect(/^Reconnect Slack$/)

      await page.locator("#timeline li", { hasText: "success" }).waitFor({ timeout: 20_000 })
      const steps = await timeline()
      assert.deepStrictEqual(steps.slice(0, 3), ["starting", "reconnecting", "connected"])
      const result = JSON.parse(await text("#result")) as ReadonlyArray<Record<string, unknown>>
      assert.strictEqual(result[0]!.text, "Hello again")
      const after = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      assert.deepStrictEqual(
        after.map((c) => [c.id, c.isExpired]),
        [[connection!.id, false]]
      )
    },
    TIMEOUT
  )

  it(
    "a run that fails shows the failure",
    async () => {
      await page.selectOption("#action", "send_direct_message")
      await page.locator("#field-user").waitFor({ state: "visible" })
      await page.fill("#field-text", "Are you there?")
      await page.click("#run")
      await page.locator("#error").waitFor({ state: "visible", timeout: 20_000 })
      assert.match(await text("#error"), /^ActionRunFailed: Action run .+ failed \(user: No Slack user matches/)
      assert.strictEqual((await timeline()).at(-1), "error")
      assert.isTrue(await page.locator("#result").isHidden())
    },
    TIMEOUT
  )

  it(
    "a blocked popup: the page falls back to the redirect pattern and comes back connected through /zapier/callback",
    async () => {
      const [connection] = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      await Effect.runPromise(zapier.expireConnection(connection!.id))
      const mints = async () =>
        (await Effect.runPromise(zapier.ledger)).exchanges.filter((e) => e.kind === "connect").length
      const before = await mints()
      // Re-select the app: the page checks the connection again and offers to reconnect.
      await page.selectOption("#app", "formatter")
      await page.locator("#connection[data-state='none']").waitFor()
      await page.selectOption("#app", "slack")
      await page.locator("#connection[data-state='expired']").waitFor()
      assert.strictEqual(await text("#connect"), "Reconnect")
      await page.locator("#json-note", { hasText: /^Connect the app/ }).waitFor()
      assert.strictEqual(await mints(), before, "switching apps mints no connect token")
      // As a browser that refuses every popup does.
      await page.evaluate(() => {
        window.open = () => null
      })
      await Promise.all([page.waitForURL(/\/to\/slack\?/), page.click("#connect")])
      assert.strictEqual(new URL(page.url()).searchParams.get("reconnect_id"), connection!.id)
      assert.strictEqual(await mints(), before + 1, "the Reconnect click mints one")
      await Promise.all([page.waitForURL(`${url}/`), page.click("#approve")])
      await page.locator("#app-ui").waitFor({ state: "visible" })
      await page.locator("#connection[data-state='connected']").waitFor()
      assert.include(await timeline(), "connected")
      const after = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      assert.deepStrictEqual(
        after.map((c) => [c.id, c.isExpired]),
        [[connection!.id, false]]
      )
    },
    TIMEOUT
  )

  it(
    "an expiring connection: Zapier's signed notice shows 'expires on …, reconnect', and the link renews it",
    async () => {
      // Re-validate the connection first (the previous step left it connected through the redirect).
      await page.selectOption("#app", "formatter")
      await page.locator("#connection[data-state='none']").waitFor()
      const [connection] = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      const expiresAt = DateTime.unsafeMake("2031-05-17T09:30:00Z")
      const deliveries = await Effect.runPromise(zapier.scheduleConnectionExpiry(connection!.id, expiresAt))
      assert.deepStrictEqual(
        deliveries.map((d) => d.status),
        [200]
      )

      await page.selectOption("#app", "slack")
      await page.locator("#connection[data-state='expiring']").waitFor()
      const notice = await text("#connection-text")
      assert.match(notice, /expires on .*2031.*, reconnect$/)
      const link = new URL((await page.locator("#reconnect").getAttribute("href")) ?? "")
      assert.strictEqual(link.searchParams.get("reconnect_id"), connection!.id)

      const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#reconnect")])
      await popup.waitForLoadState("load")
      assert.match((await popup.locator("h1").textContent()) ?? "", /^Reconnect Slack$/)
      await popup.click("#approve")
      if (!popup.isClosed()) await popup.waitForEvent("close")
      await page.locator("#connection[data-state='connected']").waitFor()
      assert.isTrue(await page.locator("#reconnect").isHidden())
      const after = await Effect.runPromise(zapier.connections(FakeZapier.sample.user, "slack"))
      assert.deepStrictEqual(
        after.map((c) => c.id),
        [connection!.id]
      )
    },
    TIMEOUT
  )

  it(
    "watches a trigger: the fake emits events, the page shows every one, each is acked, and a reload keeps them",
    async () => {
      const N = 7
      await page.selectOption("#app", "slack")
      await page.locator("#connection[data-state='connected']").waitFor()
      await page.locator("#trigger option", { hasText: "New Message in Channel" }).waitFor({ state: "attached" })
      assert.deepStrictEqual(await page.locator("#trigger option").allInnerTexts(), [
        "List Channels",
        "New Message in Channel"
      ])
      // The first trigger's fields are still loading: answering after the select below, they would replace its form.
      await quiet()
      await page.selectOption("#trigger", "new_channel_message")
      await page.locator("#trigger-field-channel").waitFor({ state: "visible" })
      await quiet()
      await page.selectOption("#trigger-field-channel", "#general")
      await quiet()
      await page.click("#watch")
      await page.locator(".watch[data-state='consuming']").waitFor({ timeout: 20_000 })
      assert.isTrue(await page.locator("#watch-error").isHidden())

      const [inbox] = await Effect.runPromise(zapier.inboxes)
      assert.strictEqual(inbox!.status, "active")
      // A payload that would run script if the page treated it as markup.
      const payloads = Array.from({ length: N }, (_, i) => ({
        id: `evt-${i}`,
        text: i === 0 ? "<img src=x onerror=\"document.title='owned'\">" : `message ${i}`,
        channel: "#general"
      }))
      const ids = await Effect.runPromise(zapier.emitTriggerEvents(inbox!.id, payloads))
      const items = page.locator(".watch .trigger-events li")
      await page.waitForFunction((n) => document.querySelectorAll(".watch .trigger-events li").length === n, N, {
        timeout: 20_000
      })
      const shown = await items.evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.messageId ?? ""))
      assert.deepStrictEqual(new Set(shown), new Set(ids))
      assert.include((await items.allInnerTexts()).join("\n"), "message 6")
      // The count and the list come from two reads of the store (no transaction): an event recorded between them
      // shows a short count until the next poll (700 ms). Wait for the count instead of reading it once.
      await page.locator(".watch .watch-state", { hasText: `${N} events` }).waitFor({ timeout: 20_000 })
      assert.include(await text(".watch .watch-state"), `${N} events`)
      assert.strictEqual(await page.locator(".watch .trigger-events img").count(), 0, "payloads are shown as text")
      assert.notStrictEqual(await page.title(), "owned")

      // Zapier's side: every message acknowledged, none leased twice.
      const deadline = Date.now() + 20_000
      let messages = await Effect.runPromise(zapier.inboxMessages)
      while (messages.some((m) => m.status !== "acked") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        messages = await Effect.runPromise(zapier.inboxMessages)
      }
      assert.deepStrictEqual(
        messages.map((m) => [m.id, m.status, m.leaseCount]),
        ids.map((id) => [id, "acked", 1])
      )

      // A reload: the watch and its events are still there, and no second consumer was started.
      await page.reload()
      await page.locator("#app-ui").waitFor({ state: "visible" })
      await page.waitForFunction((n) => document.querySelectorAll(".watch .trigger-events li").length === n, N, {
        timeout: 20_000
      })
      const more = await Effect.runPromise(zapier.emitTriggerEvents(inbox!.id, 1))
      await page.locator(`.watch .trigger-events li[data-message-id='${more[0]}']`).waitFor({ timeout: 20_000 })
      const ledger = await Effect.runPromise(zapier.ledger)
      assert.strictEqual(
        ledger.requests.filter((r) => r.endpoint === "GET /inboxes/{id}/events").length,
        1,
        "one consumer (one event stream) for the inbox"
      )
    },
    TIMEOUT
  )

  it(
    "a fields answer that arrives after a newer one (the action changed meanwhile) is dropped: typed JSON stays",
    async () => {
      const other = await browser.newContext({ viewport: { width: 1000, height: 1100 } })
      try {
        await other.addInitScript(countApiCalls)
        const tab = await other.newPage()
        // Hold the first action-fields request (the first action's, asked for when the app loads) until released.
        const { holding, release } = await holdFirst(
          tab,
          "**/api/apps/*/actions/*/fields",
          (request) => (request.postDataJSON() as { readonly actionType?: string }).actionType === "WRITE"
        )
        await tab.goto(url)
        await tab.locator("#login").waitFor({ state: "visible" })
        await tab.fill("#login-user", "u-77")
        await tab.fill("#login-tenant", "acme")
        await tab.click("#login-submit")
        assert.match(await holding, /\/actions\/send_channel_message\/fields$/)

        // Another action while the first one's fields are out: its answer (no connection: JSON inputs) draws first.
        await tab.selectOption("#action", "send_direct_message")
        await tab.locator("#json-inputs").waitFor({ state: "visible" })
        const typed = JSON.stringify({ user: "U123", text: "typed while the first load was out" })
        await tab.fill("#inputs-json", typed)

        // The first answer now arrives, and is dropped: it would reset the JSON to {} (and the fields it names).
        release()
        await tab.waitForFunction(() => (window as unknown as ApiCalls).__apiInFlight === 0, undefined, {
          timeout: 20_000
        })
        assert.strictEqual(await tab.locator("#inputs-json").inputValue(), typed)
        assert.strictEqual(await tab.locator("#action").inputValue(), "send_direct_message")
      } finally {
        await other.close()
      }
    },
    TIMEOUT
  )

  it(
    "an app's actions answered after a newer app was chosen are dropped: the chosen app's actions stay",
    async () => {
      const other = await browser.newContext({ viewport: { width: 1000, height: 1100 } })
      try {
        await other.addInitScript(countApiCalls)
        const tab = await other.newPage()
        // Hold the first actions request (the first app's, asked for at login) until released.
        const { holding, release } = await holdFirst(tab, "**/api/apps/*/actions")
        await tab.goto(url)
        await tab.locator("#login").waitFor({ state: "visible" })
        await tab.fill("#login-user", "u-78")
        await tab.fill("#login-tenant", "acme")
        await tab.click("#login-submit")
        assert.match(await holding, /\/api\/apps\/slack\/actions$/)

        // Another app while the first one's actions are out: its actions draw first.
        await tab.selectOption("#app", "formatter")
        await tab.locator("#action option[value=uppercase]").waitFor({ state: "attached" })

        // The first answer now arrives, and is dropped: it would list Slack's actions under the Formatter.
        release()
        await tab.waitForFunction(() => (window as unknown as ApiCalls).__apiInFlight === 0, undefined, {
          timeout: 20_000
        })
        assert.strictEqual(await tab.locator("#app").inputValue(), "formatter")
        assert.deepStrictEqual(
          await tab
            .locator("#action option")
            .evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value)),
          ["uppercase"]
        )
      } finally {
        await other.close()
      }
    },
    TIMEOUT
  )
})
