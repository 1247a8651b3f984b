/**
 * The page: `web/index.html`, and `web/main.ts` bundled for the browser by esbuild when the server starts (with
 * `@effect-zapier/connect` inside). Both are served from memory next to the API.
 */
import { fileURLToPath } from "node:url"
import { FileSystem, HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Data, Effect, type Layer } from "effect"
import { build } from "esbuild"
import * as Security from "./Security.js"

/** The page could not be read or bundled. */
export class WebBuildFailed extends Data.TaggedError("WebBuildFailed")<{ readonly reason: string }> {
  override get message(): string {
    return `The partner page could not be built: ${this.reason}`
  }
}

const webDir = fileURLToPath(new URL("../web/", import.meta.url))

/** Bundles `web/main.ts` into one ES module (with an inline source map). */
export const bundle: Effect.Effect<string, WebBuildFailed> = Effect.tryPromise({
  try: () =>
    build({
      entryPoints: [`${webDir}main.ts`],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: ["es2020"],
      sourcemap: "inline",
      write: false,
      logLevel: "silent"
    }),
  catch: (e) => new WebBuildFailed({ reason: e instanceof Error ? e.message.split("\n")[0]! : String(e) })
}).pipe(
  Effect.flatMap((result) =>
    result.outputFiles.length === 1
      ? Effect.succeed(result.outputFiles[0]!.text)
      : Effect.fail(new WebBuildFailed({ reason: `esbuild produced ${result.outputFiles.length} files` }))
  )
)

const noStore = { "cache-control": "no-store" }

/** `GET /` and `GET /app.js` on the API's router. */
export const layer: Layer.Layer<never, WebBuildFailed, FileSystem.FileSystem> = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const html = yield* fs
      .readFileString(`${webDir}index.html`)
      .pipe(Effect.mapError((e) => new WebBuildFailed({ reason: `web/index.html: ${e.message}` })))
    const script = yield* bundle
    yield* router.get(
      "/",
      Effect.succeed(
        Security.secured(HttpServerResponse.text(html, { contentType: "text/html; charset=utf-8", headers: noStore }))
      )
    )
    yield* router.get(
      "/app.js",
      Effect.succeed(
        Security.secured(
          HttpServerResponse.text(script, { contentType: "text/javascript; charset=utf-8", headers: noStore })
        )
      )
    )
  })
)
