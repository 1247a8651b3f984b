// `pnpm build`: every library package's dist/ (tsc: ESM `.js`, `.d.ts`, source and declaration maps), then each
// package's own `bundle` script if it has one (packages/connect: the browser bundle in dist/browser/).
// tsc builds incrementally (its build info lives in dist/, so an emptied dist/ is emitted again); outputs whose
// source is gone (a module moved or removed) are deleted first so they cannot linger in a published tarball.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { libraryPackages } from "./package-shape.mjs"

const outputs = [".d.ts.map", ".d.ts", ".js.map", ".js"]

/** Deletes what tsc emitted from sources that no longer exist (dist/browser/, the bundles, is rebuilt anyway). */
const removeStale = (src, dist, top) => {
  if (!fs.existsSync(dist)) return
  for (const entry of fs.readdirSync(dist, { withFileTypes: true })) {
    const file = path.join(dist, entry.name)
    if (entry.isDirectory()) {
      if (fs.existsSync(path.join(src, entry.name))) removeStale(path.join(src, entry.name), file, false)
      else if (!(top && entry.name === "browser")) fs.rmSync(file, { recursive: true })
      continue
    }
    const suffix = outputs.find((s) => entry.name.endsWith(s))
    if (suffix && !fs.existsSync(path.join(src, `${entry.name.slice(0, -suffix.length)}.ts`))) fs.rmSync(file)
  }
}

const packages = libraryPackages()
for (const dir of packages) removeStale(path.join(dir, "src"), path.join(dir, "dist"), true)
const tsc = path.join(path.dirname(import.meta.dirname), "node_modules/typescript/bin/tsc")
execFileSync(process.execPath, [tsc, "-b", ...packages.map((dir) => path.join(dir, "tsconfig.src.json"))], {
  stdio: "inherit"
})
for (const dir of packages) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  if (pkg.scripts?.bundle) execFileSync("pnpm", ["run", "--silent", "bundle"], { cwd: dir, stdio: "inherit" })
}
process.stdout.write(`built ${packages.map((dir) => path.basename(dir)).join(", ")}\n`)
