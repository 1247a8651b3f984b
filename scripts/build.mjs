// `pnpm build`: every library package's dist/ from scratch (tsc: ESM `.js`, `.d.ts`, source and declaration maps),
// then each package's own `bundle` script if it has one (packages/connect: the browser bundle in dist/browser/).
// dist/ is deleted first so a module that was moved or removed cannot linger in a published tarball.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { libraryPackages } from "./package-shape.mjs"

const packages = libraryPackages()
for (const dir of packages) fs.rmSync(path.join(dir, "dist"), { recursive: true, force: true })
const tsc = path.join(path.dirname(import.meta.dirname), "node_modules/typescript/bin/tsc")
execFileSync(process.execPath, [tsc, "-b", ...packages.map((dir) => path.join(dir, "tsconfig.src.json"))], {
  stdio: "inherit"
})
for (const dir of packages) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  if (pkg.scripts?.bundle) execFileSync("pnpm", ["run", "--silent", "bundle"], { cwd: dir, stdio: "inherit" })
}
process.stdout.write(`built ${packages.map((dir) => path.basename(dir)).join(", ")}\n`)
