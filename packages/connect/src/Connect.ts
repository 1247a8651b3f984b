/**
 * A tiny, dependency-free browser helper for Zapier's Connect UI (its popup and redirect patterns).
 *
 * The partner's backend mints a Connect link (`EmbeddedActions.ensureConnection` fails with `ConnectionRequired`
 * carrying a `ConnectLink`) and hands its `url` to the page. The page opens it with {@link openConnect} in a popup,
 * or sends the whole window there with {@link redirectToConnect}. The popup's answer is returned as a
 * {@link ConnectPayload} for the page to post back to the backend, which decodes it with core's `ConnectCallback`
 * and stores the connection (`EmbeddedActions.completeConnection`).
 *
 * This module runs in the partner's frontend: it has no runtime dependency (no Effect) and touches only the DOM.
 *
 * @since 0.1.0
 */

/**
 * Where Zapier's Connect UI is served, and so the only origin whose messages are accepted by default.
 * @since 0.1.0
 * @category constants
 */
export const CONNECT_ORIGIN = "https://connect.zapier.com"

/**
 * The popup's window name: opening a second flow reuses the same window.
 * @since 0.1.0
 * @category constants
 */
export const POPUP_NAME = "zapier-connect"

/**
 * The popup's size in CSS pixels.
 * @since 0.1.0
 * @category constants
 */
export const POPUP_WIDTH = 980
/**
 * @since 0.1.0
 * @category constants
 */
export const POPUP_HEIGHT = 700

/**
 * How long {@link openConnect} waits by default before it gives up (15 minutes): a user may take a while in a
 * third-party OAuth screen, but a forgotten popup should not keep listeners forever.
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TIMEOUT_MS = 15 * 60 * 1000

/**
 * A Connect link as the backend hands it over: its URL as a string or `URL`, or an object with a `url` (the shape of
 * core's `ConnectLink`; note that `ConnectLink` serialises its `url` as `<redacted>`, so send `link.url` explicitly).
 * @since 0.1.0
 * @category models
 */
export type ConnectLinkInput = string | URL | { readonly url: string }

/**
 * The query parameter the backend's `ensureConnection` puts into a link's `redirect_uri` (core's
 * `Domain.attemptParameter`): the attempt's key, which ties a redirect callback to the link it answers.
 * {@link connectRedirectUrl} carries it over into the redirect URI it sets.
 * @since 0.1.0
 * @category constants
 */
export const ATTEMPT_PARAMETER = "connect_attempt"

/**
 * What to post to the backend after a successful Connect flow: the popup's message, normalised so that `authId`
 * is always a string (Zapier sends a number). `state` is the one Connect UI echoed, else the link's own `state`
 * parameter: it tells the backend which Connect link (which attempt) this answer belongs to.
 *
 * The backend decodes it with core's `ConnectCallback` and completes the connection.
 * @since 0.1.0
 * @category models
 */
export interface ConnectPayload {
  readonly type: "authenticationSuccess"
  readonly authId: string
  readonly state?: string
}

/**
 * Why a Connect flow did not produce a connection:
 * - `"denied"`: Connect UI posted `authenticationError` (its `error` is on {@link ConnectError.error}), or a success
 *   message whose `authId` is not a usable id (`error` is then `"malformed_auth_id"`);
 * - `"closed"`: the user closed the popup before Connect UI answered;
 * - `"blocked"`: the browser refused to open the popup (call {@link openConnect} from a click handler, or fall
 *   back to {@link redirectToConnect});
 * - `"timeout"`: no answer within `timeoutMs`;
 * - `"aborted"`: the caller's `AbortSignal` fired, or a newer {@link openConnect} took over the popup.
 * @since 0.1.0
 * @category errors
 */
export type ConnectErrorReason = "denied" | "closed" | "blocked" | "timeout" | "aborted"

const MESSAGES: Record<ConnectErrorReason, string> = {
  denied: "Zapier Connect reported an error; show it to the user and let them try again with a new link",
  closed: "The Zapier Connect popup was closed before the connection was made; let the user try again",
  blocked:
    "The browser blocked the Zapier Connect popup; call openConnect from a click handler, or use redirectToConnect",
  timeout: "Zapier Connect did not answer in time; the popup was closed, ask the backend for a new link",
  aborted: "The Zapier Connect flow was aborted by the page, or replaced by a newer openConnect"
}

/**
 * The one error {@link openConnect} rejects with after it has started (bad arguments reject with a `TypeError`).
 * Switch on `reason`; when it is `"denied"`, `error` holds what Connect UI sent (its shape is not specified by
 * Zapier: often a string such as `"access_denied"`, or an object).
 *
 * @example
 * ```ts
 * import { ConnectError, openConnect } from "@effect-zapier/connect"
 *
 * // In a click handler: the link comes from the backend, the retry button is the page's own.
 * const connect = async (link: string, showRetryButton: () => void) => {
 *   try {
 *     return await openConnect(link)
 *   } catch (e) {
 *     if (e instanceof ConnectError && e.reason === "closed") showRetryButton()
 *     else throw e
 *   }
 * }
 * ```
 * @since 0.1.0
 * @category errors
 */
export class ConnectError extends Error {
  /**
   * Always `"ConnectError"`.
   * @since 0.1.0
   */
  override readonly name = "ConnectError"
  /**
   * Why the flow ended without a connection.
   * @since 0.1.0
   */
  readonly reason: ConnectErrorReason
  /**
   * Connect UI's `error` when `reason` is `"denied"`; `undefined` otherwise.
   * @since 0.1.0
   */
  readonly error: unknown

  constructor(reason: ConnectErrorReason, error?: unknown) {
    super(reason === "denied" ? `${MESSAGES.denied} (${describe(error)})` : MESSAGES[reason])
    this.reason = reason
    this.error = error
  }
}

/**
 * Options of {@link openConnect}.
 * @since 0.1.0
 * @category models
 */
export interface OpenConnectOptions {
  /**
   * The only origin whose messages are accepted. Default {@link CONNECT_ORIGIN}. `"link"` takes the origin of the
   * link itself (for a Connect UI served elsewhere, e.g. a local fake in tests).
   */
  readonly origin?: string
  /** Give up (and close the popup) after this many milliseconds. Default {@link DEFAULT_TIMEOUT_MS}; `Infinity` never. */
  readonly timeoutMs?: number
  /** Abort the flow (and close the popup). */
  readonly signal?: AbortSignal
  /** How often to check whether the user closed the popup, in milliseconds. Default 500. */
  readonly pollIntervalMs?: number
  /** Close the popup when the flow ends (success, denial, timeout, abort). Default `true`. */
  readonly closePopup?: boolean
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"])
const MAX_ID_LENGTH = 128
const MAX_STATE_LENGTH = 512
/** Ends the flow in progress, if any: the popup window is shared by name, so only one flow may listen to it. */
let supersede: (() => void) | undefined

/** After the popup is seen closed, wait this long for a message that may still be queued before rejecting. */
const CLOSED_GRACE_MS = 150

/** Parses `value` as an absolute URL that is https, or http on a loopback host; otherwise a `TypeError`. */
const secureUrl = (value: string, what: string): URL => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${what} is not an absolute URL; pass the full https URL`)
  }
  if (url.protocol === "https:") return url
  if (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)) return url
  throw new TypeError(`${what} must be an https URL (http is allowed only on 127.0.0.1, localhost or [::1])`)
}

const linkUrl = (link: ConnectLinkInput): URL => {
  const raw = typeof link === "string" ? link : link instanceof URL ? link.href : link?.url
  if (typeof raw !== "string" || raw.length === 0) {
    throw new TypeError("The Connect link must be a URL string, a URL, or an object with a `url` string")
  }
  return secureUrl(raw, "The Connect link")
}

const expectedOrigin = (origin: string | undefined, link: URL): string => {
  if (origin === undefined) return CONNECT_ORIGIN
  if (origin === "link") return link.origin
  const url = secureUrl(origin, "The `origin` option")
  if (url.origin !== origin.replace(/\/$/, "")) {
    throw new TypeError(`The \`origin\` option must be an origin only (scheme, host and port), like ${url.origin}`)
  }
  return url.origin
}

const positive = (value: number | undefined, fallback: number, what: string): number => {
  if (value === undefined) return fallback
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`\`${what}\` must be a positive number of milliseconds`)
  }
  return value
}

const describe = (error: unknown): string => {
  if (typeof error === "string") return error.slice(0, 200)
  if (error && typeof error === "object" && "error" in error && typeof error.error === "string") {
    return error.error.slice(0, 200)
  }
  return "no error code"
}

const normaliseAuthId = (authId: unknown): string | undefined => {
  const id =
    typeof authId === "number" && Number.isSafeInteger(authId) && authId >= 0
      ? String(authId)
      : typeof authId === "string"
        ? authId.trim()
        : undefined
  return id !== undefined && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : undefined
}

type Outcome =
  | { readonly _tag: "success"; readonly payload: ConnectPayload }
  | { readonly _tag: "failure"; readonly error: ConnectError }
  | undefined

/** The link's `state` parameter (the backend's attempt key), when it has a usable one. */
const linkState = (url: URL): string | undefined => {
  const state = url.searchParams.get("state")
  return state !== null && state.length > 0 && state.length <= MAX_STATE_LENGTH ? state : undefined
}

/** Reads a message from Connect UI; `undefined` for messages that are not Connect's answer (ignored). */
const readMessage = (data: unknown, fallbackState: string | undefined): Outcome => {
  if (!data || typeof data !== "object" || !("type" in data)) return undefined
  if (data.type === "authenticationError") {
    return { _tag: "failure", error: new ConnectError("denied", "error" in data ? data.error : undefined) }
  }
  if (data.type !== "authenticationSuccess") return undefined
  const authId = normaliseAuthId("authId" in data ? data.authId : undefined)
  if (authId === undefined) return { _tag: "failure", error: new ConnectError("denied", "malformed_auth_id") }
  const echoed = "state" in data ? data.state : undefined
  const state =
    typeof echoed === "string" && echoed.length > 0 && echoed.length <= MAX_STATE_LENGTH ? echoed : fallbackState
  const payload: ConnectPayload =
    state !== undefined ? { type: "authenticationSuccess", authId, state } : { type: "authenticationSuccess", authId }
  return { _tag: "success", payload }
}

/**
 * Opens Zapier's Connect UI in a 980×700 popup named `"zapier-connect"` and waits for its answer.
 *
 * - Resolves with the {@link ConnectPayload} to post to the backend when Connect UI posts `authenticationSuccess`.
 * - Rejects with a {@link ConnectError} on `authenticationError` (`"denied"`), when the user closes the popup
 *   (`"closed"`), when the browser blocks it (`"blocked"`), after `timeoutMs` (`"timeout"`) or when `signal` aborts
 *   (`"aborted"`). Bad arguments reject with a `TypeError` saying what to fix, before anything is opened.
 * - Accepts a `message` only when it comes from the Connect origin **and** from the popup window itself; anything
 *   else (other origins, other windows, unrelated message types) is ignored.
 * - Removes its listeners and timers in every case, and closes the popup unless `closePopup: false`.
 * - One flow at a time: the popup is one named window, so a new call takes it over and the pending call rejects
 *   with `"aborted"` (leaving the window to the new flow).
 *
 * Call it synchronously from a click handler: browsers block popups opened later.
 *
 * @example
 * ```ts
 * import { openConnect } from "@effect-zapier/connect"
 *
 * // The page's "Connect Slack" button: the popup must open in the click handler.
 * const wire = (button: HTMLButtonElement) =>
 *   button.addEventListener("click", async () => {
 *     const { url } = await (await fetch("/zapier/connect-link?app=SlackCLIAPI")).json()
 *     const payload = await openConnect(url)
 *     await fetch("/zapier/complete-connection?app=SlackCLIAPI", {
 *       method: "POST",
 *       headers: { "content-type": "application/json" },
 *       body: JSON.stringify(payload)
 *     })
 *   })
 * ```
 * @since 0.1.0
 * @category popup
 */
export const openConnect = (link: ConnectLinkInput, options: OpenConnectOptions = {}): Promise<ConnectPayload> => {
  let url: URL
  let origin: string
  let timeoutMs: number
  let pollMs: number
  try {
    url = linkUrl(link)
    origin = expectedOrigin(options.origin, url)
    timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, "timeoutMs")
    pollMs = positive(options.pollIntervalMs, 500, "pollIntervalMs")
  } catch (error) {
    return Promise.reject(error)
  }
  const { signal } = options
  const closePopup = options.closePopup !== false

  return new Promise<ConnectPayload>((resolve, reject) => {
    if (signal?.aborted) return reject(new ConnectError("aborted"))

    // Synchronously, so the click that called us still counts as the user's gesture.
    const features = `popup=yes,width=${POPUP_WIDTH},height=${POPUP_HEIGHT},${centre()}`
    const popup = window.open(url.href, POPUP_NAME, features)
    if (popup === null) return reject(new ConnectError("blocked"))
    supersede?.()

    let settled = false
    let pollTimer: ReturnType<typeof setInterval> | undefined
    let deadline: ReturnType<typeof setTimeout> | undefined
    let grace: ReturnType<typeof setTimeout> | undefined

    const finish = (outcome: NonNullable<Outcome>, keepPopup = false): void => {
      if (settled) return
      settled = true
      if (supersede === onSuperseded) supersede = undefined
      window.removeEventListener("message", onMessage)
      signal?.removeEventListener("abort", onAbort)
      if (pollTimer !== undefined) clearInterval(pollTimer)
      if (deadline !== undefined) clearTimeout(deadline)
      if (grace !== undefined) clearTimeout(grace)
      if (closePopup && !keepPopup && !popup.closed) popup.close()
      if (outcome._tag === "success") resolve(outcome.payload)
      else reject(outcome.error)
    }
    const fail = (reason: ConnectErrorReason) => finish({ _tag: "failure", error: new ConnectError(reason) })

    function onMessage(event: MessageEvent): void {
      if (event.origin !== origin || event.source !== popup) return
      const outcome = readMessage(event.data, linkState(url))
      if (outcome !== undefined) finish(outcome)
    }
    function onAbort(): void {
      fail("aborted")
    }
    function onSuperseded(): void {
      finish({ _tag: "failure", error: new ConnectError("aborted") }, true)
    }

    supersede = onSuperseded
    window.addEventListener("message", onMessage)
    signal?.addEventListener("abort", onAbort, { once: true })
    pollTimer = setInterval(() => {
      // A message posted just before the popup closed may still be queued behind this timer: give it a moment.
      if (popup.closed && grace === undefined) grace = setTimeout(() => fail("closed"), CLOSED_GRACE_MS)
    }, pollMs)
    if (Number.isFinite(timeoutMs)) deadline = setTimeout(() => fail("timeout"), timeoutMs)
  })
}

/** Window features that centre the popup over the current window. */
const centre = (): string => {
  const left = Math.max(0, Math.round(window.screenX + (window.outerWidth - POPUP_WIDTH) / 2))
  const top = Math.max(0, Math.round(window.screenY + (window.outerHeight - POPUP_HEIGHT) / 2))
  return `left=${left},top=${top}`
}

/**
 * The Connect link with `redirect_uri` set (Zapier's redirect pattern), for pages that cannot use a popup. Connect UI sends the
 * browser back to `redirectUri` with `?authentication_id=…&service=…` on success, or `?error=…&error_description=…`
 * on failure; the backend's callback handler completes the connection from that query.
 *
 * `redirectUri` may be relative to the current page; it must end up https (or http on loopback), and must be a
 * callback URL registered with Zapier. The link's attempt key (the `connect_attempt` of its own `redirect_uri`, else
 * its `state`) is set as {@link ATTEMPT_PARAMETER} on the new redirect URI, so the callback still proves which link
 * it answers. Throws a `TypeError` on bad input.
 *
 * @example
 * ```ts
 * import { connectRedirectUrl } from "@effect-zapier/connect"
 *
 * const link = "https://connect.zapier.com/to/SlackCLIAPI?token=ct-1"
 * const url = connectRedirectUrl(link, "https://app.example.com/zapier/callback")
 * // https://connect.zapier.com/to/SlackCLIAPI?token=…&redirect_uri=https%3A%2F%2Fapp.example.com%2Fzapier%2Fcallback
 * ```
 * @since 0.1.0
 * @category redirect
 */
export const connectRedirectUrl = (link: ConnectLinkInput, redirectUri: string | URL): string => {
  const url = linkUrl(link)
  const base = typeof location === "undefined" ? undefined : location.href
  let callback: string
  try {
    callback = new URL(redirectUri, base).href
  } catch {
    throw new TypeError("The redirect URI is not a URL; pass the callback URL registered with Zapier")
  }
  const checked = secureUrl(callback, "The redirect URI")
  const attempt = attemptOf(url)
  if (attempt !== undefined) checked.searchParams.set(ATTEMPT_PARAMETER, attempt)
  url.searchParams.set("redirect_uri", checked.href)
  return url.href
}

/** The attempt key of a link: the `connect_attempt` of its `redirect_uri`, else its `state`. */
const attemptOf = (link: URL): string | undefined => {
  const current = link.searchParams.get("redirect_uri")
  if (current !== null) {
    try {
      const attempt = new URL(current).searchParams.get(ATTEMPT_PARAMETER)
      if (attempt !== null && attempt.length > 0 && attempt.length <= MAX_STATE_LENGTH) return attempt
    } catch {
      // not a URL: fall back to the state
    }
  }
  return linkState(link)
}

/**
 * Sends the current window to Connect UI with `redirect_uri` set (see {@link connectRedirectUrl}), and returns the
 * URL it navigated to. Throws a `TypeError` on bad input, before navigating.
 *
 * @example
 * ```ts
 * import { redirectToConnect } from "@effect-zapier/connect"
 *
 * // In the page: leaves it for Connect UI, which comes back to /zapier/callback.
 * const goConnect = (link: string) => redirectToConnect(link, "/zapier/callback")
 * ```
 * @since 0.1.0
 * @category redirect
 */
export const redirectToConnect = (link: ConnectLinkInput, redirectUri: string | URL): string => {
  const url = connectRedirectUrl(link, redirectUri)
  window.location.assign(url)
  return url
}
