/**
 * The helper in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core.
 *
 * The bundle is built by the package's own build step (scripts/bundle.mjs) and served as an ES module by a partner
 * test page on one loopback origin. Its backend is core's EmbeddedActions over the live http layers against
 * FakeZapierServer, whose Connect UI (another origin) the popup opens: a connection approved in the browser ends up
 * in the fake's ledger and in the partner's ConnectionStore. A stub Connect page and an "evil" origin (two more
 * origins) produce what the fake cannot: forged messages.
 * The popup blocker is left on (playwright turns it off by default), so "blocked" is the browser's own verdict.
 */

import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { promisify } from "node:util"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConnectCallback } from "@effect-zapier/core/Domain"
import { Schema } from "effect"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import * as Backend from "./fixtures/backend.js"
import { forgerPage, html, json, partnerPage, type Server, serve, stubConnectPage } from "./fixtures/servers.js"

// Debian's chromium package; CHROMIUM_PATH overrides it (e.g. to check the missing-browser path).
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const hasChromium = Fs.existsSync(CHROMIUM)
const inCI = (process.env.CI ?? "") !== "" && process.env.CI !== "false"
const TIMEOUT = 60_000

interface Outcome {
  readonly ok: boolean
  readonly payload?: unknown
  readonly backend?: unknown
  readonly name?: string
  readonly isConnectError?: boolean
  readonly reason?: string
  readonly error?: unknown
  readonly message?: string
}
interface LiveCounts {
  readonly message: number
  readonly abort: number
  readonly intervals: number
  readonly timeouts: number
}
declare global {
  interface Window {
    __outcome?: Outcome
    __messages: Array<{ readonly origin: string; readonly data: unknown }>
    __liveCounts: () => LiveCounts
    __opened: Array<{ readonly url: string; readonly name: string; readonly features: string }>
  }
}

const decodeCallback = Schema.decodeUnknownSync(ConnectCallback)
const STUB_AUTH_ID = 12345
const FORGED_AUTH_ID = 666
const FRAMED_AUTH_ID = 777

if (!hasChromium) {
  const reason = `${CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium)`
  if (inCI) {
    it("headless Chromium is installed for the browser tests", () => {
      assert.fail(`${reason}; .ci/run installs it, so CI must have it`)
    })
  } else {
    console.warn(`[@effect-zapier/connect] skipping browser tests: ${reason}`)
  }
}

describe.skipIf(!hasChromium)("openConnect / redirectToConnect in headless Chromium", () => {
  let browser: Browser
  let backend: Backend.Backend
  let app: Server
  let stub: Server
  let evil: Server
  let bundle: string
  let tmp: string
  let linkCount = 0
  let userCount = 0
  /** Popup payloads the page posted for the stub Connect page (decoded with core's ConnectCallback). */
  const stubCompletions: Array<unknown> = []

  beforeAll(async () => {
    tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-zapier-connect-"))
    const packageDir = Path.resolve(__dirname, "..")
    await promisify(execFile)(process.execPath, [Path.join(packageDir, "scripts/bundle.mjs"), "--outdir", tmp])
    bundle = Fs.readFileSync(Path.join(tmp, "connect.min.js"), "utf8")

    backend = await Backend.start()
    stub = await serve(({ url }) => {
      if (url.pathname.startsWith("/to/")) return stubConnectPage(url, STUB_AUTH_ID)
      if (url.pathname === "/forge") return forgerPage(url, FRAMED_AUTH_ID)
      return html("not found", 404)
    })
    evil = await serve(({ url }) => (url.pathname === "/forge" ? forgerPage(url, FORGED_AUTH_ID) : html("", 404)))
    app = await serve(async ({ method, url, body }) => {
      const target = url.searchParams.get("target") ?? "fake"
      const user = url.searchParams.get("user") ?? "u-1"
      const stubLink = () => `${stub.origin}/to/StubAPI?token=connect-token-${++linkCount}`
      if (method === "GET" && url.pathname === "/") return partnerPage()
      if (method === "GET" && url.pathname === "/connect.js") return { type: "text/javascript", body: bundle }
      if (method === "GET" && url.pathname === "/link") {
        if (target === "fake") return json(await backend.link(user))
        if (target === "evil") return json({ url: `${evil.origin}/forge?next=${encodeURIComponent(stubLink())}` })
        return json({ url: stubLink() })
      }
      if (method === "POST" && url.pathname === "/complete") {
        if (target === "fake") return json(await backend.complete(user, JSON.parse(body)))
        const outcome = decodeCallback(JSON.parse(body))
        stubCompletions.push(outcome)
        return json(outcome)
      }
      if (method === "GET" && url.pathname === "/callback") {
        const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== "target" && k !== "user"))
        const reply = await backend.complete(user, query)
        return html(`<!doctype html><title>callback</title><pre id="callback">${JSON.stringify(reply)}</pre>`)
      }
      return html("not found", 404)
    })

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
      // Keep Chromium's popup blocker on, so a popup opened without a user gesture is really blocked.
      ignoreDefaultArgs: ["--disable-popup-blocking"]
    })
  }, TIMEOUT)

  afterAll(async () => {
    await browser?.close()
    await Promise.all([app?.close(), stub?.close(), evil?.close(), backend?.dispose()])
    if (tmp) Fs.rmSync(tmp, { recursive: true, force: true })
  }, TIMEOUT)

  /**
   * Opens the partner page in a fresh browser context, for a fresh end user (so each test has its own connect
   * attempt and connections), and hands both to `body`.
   */
  const withPage =
    (
      query: Record<string, string> | (() => Record<string, string>),
      body: (page: Page, user: string, context: BrowserContext) => Promise<void>
    ) =>
    async () => {
      stubCompletions.length = 0
      const user = `u-${++userCount}`
      // viewport: null lets the popup keep the size window.open asked for.
      const context = await browser.newContext({ viewport: null })
      try {
        const page = await context.newPage()
        const params = new URLSearchParams({ user, ...(typeof query === "function" ? query() : query) })
        await page.goto(`${app.origin}/?${params}`)
        await page.waitForFunction(() => document.readyState === "complete")
        await body(page, user, context)
      } finally {
        await context.close()
      }
    }

  /** Clicks the page's Connect button and returns the popup it opened (once loaded, unless `load: false`). */
  const clickConnect = async (page: Page, options: { readonly load?: boolean } = {}): Promise<Page> => {
    const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#connect")])
    if (options.load !== false) await popup.waitForLoadState("load")
    return popup
  }

  /** Resolves once the popup is closed (whether or not that already happened). */
  const closedPopup = async (popup: Page): Promise<void> => {
    if (!popup.isClosed()) await popup.waitForEvent("close")
  }

  const outcomeOf = async (page: Page): Promise<Outcome> => {
    const handle = await page.waitForFunction(() => window.__outcome, undefined, { timeout: 20_000 })
    return (await handle.jsonValue()) as Outcome
  }

  const assertCleanedUp = async (page: Page) => {
    assert.deepStrictEqual(await page.evaluate(() => window.__liveCounts()), {
      message: 0,
      abort: 0,
      intervals: 0,
      timeouts: 0
    })
  }

  /** Waits until the page has received the message from `origin` that carries `authId`. */
  const messageSeen = (page: Page, origin: string, authId: number | string) =>
    page.waitForFunction(
      ([o, id]) =>
        window.__messages.some((m) => m.origin === o && String((m.data as { authId?: unknown }).authId) === id),
      [origin, String(authId)] as const,
      { timeout: 20_000 }
    )

  /**
   * Waits until the page has seen a message carrying `authId` from `origin`, and checks the helper ignored it. Only
   * for a popup that stays open: nothing else (a close, the timeout) may settle the helper meanwhile.
   */
  const assertIgnored = async (page: Page, origin: string, authId: number | string) => {
    await messageSeen(page, origin, authId)
    // Message listeners run in one dispatch: the helper has seen it too, and must not have settled.
    assert.strictEqual(await page.evaluate(() => window.__outcome), undefined)
  }

  /** The fake Zapier's Connect sessions of one user. */
  const connectsOf = async (user: string) =>
    (await backend.connects())
      .filter((c) => c.user?.userId === user)
      .map((c) => ({
        outcome: c.outcome,
        connection: c.connection
      }))

  it(
    "approve in FakeZapierServer's Connect UI: the page gets the payload, the backend completes and stores the connection",
    withPage({ target: "fake", origin: "link" }, async (page, user) => {
      const popup = await clickConnect(page)
      assert.isTrue(popup.url().startsWith(`${backend.zapierUrl}/to/${Backend.app}?`))
      assert.isTrue(new URL(popup.url()).searchParams.has("token"))
      const [opened] = await page.evaluate(() => window.__opened)
      assert.strictEqual(opened?.name, "zapier-connect")
      assert.match(opened?.features ?? "", /^popup=yes,width=980,height=700,left=\d+,top=\d+$/)
      // The browser honoured it (give or take a pixel of window chrome).
      const shape = await popup.evaluate(() => ({
        name: window.name,
        width: window.innerWidth,
        height: window.innerHeight
      }))
      assert.strictEqual(shape.name, "zapier-connect")
      assert.closeTo(shape.width, 980, 2)
      assert.closeTo(shape.height, 700, 2)

      const linkState = new URL(popup.url()).searchParams.get("state")
      await popup.click("#approve")
      const outcome = await outcomeOf(page)
      await closedPopup(popup)
      // The fake Zapier's ledger: one approved session, which created the connection the page was handed.
      const connects = await connectsOf(user)
      assert.strictEqual(connects.length, 1)
      assert.strictEqual(connects[0]?.outcome, "approved")
      const connectionId = connects[0]?.connection ?? ""
      assert.deepStrictEqual(await backend.connections(user), [connectionId])
      // The fake's popup echoes no state: the helper added the link's own, which names the backend's attempt.
      assert.isString(linkState)
      assert.deepStrictEqual(outcome.payload, { type: "authenticationSuccess", authId: connectionId, state: linkState })
      assert.deepStrictEqual(outcome.backend, { ok: true, connectionId })
      assert.strictEqual(await backend.stored(user), connectionId)
      // The backend now has a connection: no new Connect link.
      assert.deepStrictEqual(await backend.link(user), { connected: connectionId })
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "a message from another origin, even from the popup window itself, is ignored",
    withPage(
      () => ({ target: "evil", origin: stub.origin }),
      async (page) => {
        const popup = await clickConnect(page)
        assert.isTrue(popup.url().startsWith(`${evil.origin}/forge`))
        await assertIgnored(page, evil.origin, FORGED_AUTH_ID)
        await Promise.all([popup.waitForURL(`${stub.origin}/to/**`), popup.click("#continue")])
        await popup.click("#approve")
        const outcome = await outcomeOf(page)
        assert.deepStrictEqual(outcome.payload, { type: "authenticationSuccess", authId: String(STUB_AUTH_ID) })
        assert.deepStrictEqual(stubCompletions, [
          { _tag: "Approved", connectionId: String(STUB_AUTH_ID), via: "popup" }
        ])
        await assertCleanedUp(page)
      }
    ),
    TIMEOUT
  )

  it(
    "a message from the Connect origin but from another window (an iframe) is ignored",
    withPage({ target: "stub", origin: "link" }, async (page) => {
      const popup = await clickConnect(page)
      await page.evaluate((src) => {
        const frame = document.createElement("iframe")
        frame.src = src
        document.body.append(frame)
      }, `${stub.origin}/forge`)
      await assertIgnored(page, stub.origin, FRAMED_AUTH_ID)
      await popup.click("#approve")
      const outcome = await outcomeOf(page)
      assert.deepStrictEqual(outcome.payload, { type: "authenticationSuccess", authId: String(STUB_AUTH_ID) })
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "by default only https://connect.zapier.com is trusted: a loopback Connect UI's answer is ignored",
    withPage({ target: "fake" }, async (page, user) => {
      const popup = await clickConnect(page)
      await popup.click("#approve")
      // Wait for the fake's answer to reach the page, then check which connection it carried.
      await page.waitForFunction((o) => window.__messages.some((m) => m.origin === o), backend.zapierUrl)
      const [connect] = await connectsOf(user)
      assert.strictEqual(connect?.outcome, "approved")
      await messageSeen(page, backend.zapierUrl, connect?.connection ?? "")
      // The fake's popup page closes itself right after posting, so the helper may already have settled by now (a
      // check for "not settled yet" here raced the close on a loaded machine). It must have settled as closed: had
      // it taken the loopback answer, it would have settled with that connection before the popup closed.
      const outcome = await outcomeOf(page)
      assert.strictEqual(outcome.reason, "closed")
      assert.strictEqual(await backend.stored(user), undefined)
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "closing the popup rejects with a ConnectError, reason closed",
    withPage({ target: "fake", origin: "link" }, async (page, user) => {
      const popup = await clickConnect(page)
      await popup.close()
      const outcome = await outcomeOf(page)
      assert.deepStrictEqual(
        { ok: outcome.ok, name: outcome.name, isConnectError: outcome.isConnectError, reason: outcome.reason },
        { ok: false, name: "ConnectError", isConnectError: true, reason: "closed" }
      )
      assert.deepStrictEqual(await connectsOf(user), [])
      assert.strictEqual(await backend.stored(user), undefined)
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "a denied flow rejects with reason denied and Connect's error, and nothing is stored",
    withPage({ target: "fake", origin: "link" }, async (page, user) => {
      const popup = await clickConnect(page)
      await popup.click("#deny")
      const outcome = await outcomeOf(page)
      assert.deepStrictEqual(
        { isConnectError: outcome.isConnectError, reason: outcome.reason, error: outcome.error },
        {
          isConnectError: true,
          reason: "denied",
          error: { error: "server_error", error_description: "OAuth Failed: access_denied" }
        }
      )
      assert.include(outcome.message ?? "", "server_error")
      await closedPopup(popup)
      assert.deepStrictEqual(await connectsOf(user), [{ outcome: "denied", connection: undefined }])
      assert.deepStrictEqual(await backend.connections(user), [])
      assert.strictEqual(await backend.stored(user), undefined)
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "a popup opened without a user gesture is blocked by Chromium: rejects with reason blocked",
    async () => {
      // Every playwright evaluate counts as a user gesture, so nothing may be evaluated in the page until the
      // helper has tried to open the popup: the outcome is read from the page's console instead.
      const context = await browser.newContext({ viewport: null })
      try {
        const page = await context.newPage()
        const reported = page.waitForEvent("console", {
          predicate: (m) => m.text().startsWith("outcome "),
          timeout: 20_000
        })
        await page.goto(
          `${app.origin}/?${new URLSearchParams({ target: "fake", origin: "link", user: "u-blocked", auto: "1" })}`
        )
        const outcome = JSON.parse((await reported).text().slice("outcome ".length)) as Outcome
        assert.deepStrictEqual(
          { isConnectError: outcome.isConnectError, reason: outcome.reason },
          { isConnectError: true, reason: "blocked" }
        )
        assert.strictEqual(context.pages().length, 1)
        await assertCleanedUp(page)
      } finally {
        await context.close()
      }
    },
    TIMEOUT
  )

  it(
    "no answer within timeoutMs rejects with reason timeout and closes the popup",
    withPage({ target: "fake", origin: "link", timeoutMs: "1500" }, async (page) => {
      // The popup may close (by the helper) before it has even loaded.
      const popup = await clickConnect(page, { load: false })
      const outcome = await outcomeOf(page)
      assert.strictEqual(outcome.reason, "timeout")
      await closedPopup(popup)
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "an AbortSignal rejects with reason aborted and closes the popup",
    withPage({ target: "fake", origin: "link", abortAfterMs: "1000" }, async (page) => {
      const popup = await clickConnect(page, { load: false })
      const outcome = await outcomeOf(page)
      assert.strictEqual(outcome.reason, "aborted")
      await closedPopup(popup)
      await assertCleanedUp(page)
    }),
    TIMEOUT
  )

  it(
    "redirect pattern: Connect UI sends the browser back to the callback URL with authentication_id, and it is stored",
    withPage({ target: "fake" }, async (page, user) => {
      await Promise.all([page.waitForURL(`${backend.zapierUrl}/to/**`), page.click("#redirect")])
      const connectUrl = new URL(page.url())
      const callback = new URL(connectUrl.searchParams.get("redirect_uri") ?? "")
      assert.strictEqual(`${callback.origin}${callback.pathname}`, `${app.origin}/callback`)
      assert.isTrue(connectUrl.searchParams.has("token"))
      await Promise.all([page.waitForURL(`${app.origin}/callback?**`), page.click("#approve")])
      const landed = new URL(page.url())
      const [connect] = await connectsOf(user)
      const connectionId = connect?.connection ?? ""
      assert.strictEqual(connect?.outcome, "approved")
      assert.strictEqual(landed.searchParams.get("authentication_id"), connectionId)
      assert.strictEqual(landed.searchParams.get("service"), "SlackAPI")
      assert.deepStrictEqual(JSON.parse((await page.textContent("#callback")) ?? ""), { ok: true, connectionId })
      assert.strictEqual(await backend.stored(user), connectionId)
    }),
    TIMEOUT
  )

  it(
    "redirect pattern, denied: the callback URL gets error and error_description, and the backend refuses",
    withPage({ target: "fake" }, async (page, user) => {
      await Promise.all([page.waitForURL(`${backend.zapierUrl}/to/**`), page.click("#redirect")])
      await Promise.all([page.waitForURL(`${app.origin}/callback?**`), page.click("#deny")])
      const landed = new URL(page.url())
      assert.strictEqual(landed.searchParams.get("error"), "server_error")
      assert.strictEqual(landed.searchParams.get("error_description"), "OAuth Failed: access_denied")
      assert.deepStrictEqual(JSON.parse((await page.textContent("#callback")) ?? ""), {
        ok: false,
        tag: "ConnectFailed",
        reason: "denied"
      })
      assert.strictEqual(await backend.stored(user), undefined)
    }),
    TIMEOUT
  )
})
