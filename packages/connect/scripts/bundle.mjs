// Bundles src/index.ts into one browser ES module: dist/browser/connect.js (readable) and dist/browser/connect.min.js.
// Usage: node scripts/bundle.mjs [--outdir <dir>]
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const flag = process.argv.indexOf("--outdir")
const outdir = flag === -1 ? path.join(root, "dist", "browser") : path.resolve(process.argv[flag + 1] ?? "")

const common = {
  entryPoints: [path.join(root, "src/index.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning"
}

await build({ ...common, outfile: path.join(outdir, "connect.js") })
await build({ ...common, outfile: path.join(outdir, "connect.min.js"), minify: true })
process.stdout.write(`bundled ${path.relative(process.cwd(), outdir) || "."}/connect.js and connect.min.js\n`)
