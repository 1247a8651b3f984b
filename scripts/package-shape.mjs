// The publish shape every library package under packages/ shares, in one place.
//
//   node scripts/package-shape.mjs            check every package, exit 1 listing what differs
//   node scripts/package-shape.mjs --write    apply the shape (a new package: run this once, then review the diff)
//
// The shape follows Effect's own packages: the workspace resolves `./src/*.ts` (no build needed to test or
// typecheck), and `pnpm pack` / `pnpm publish` swap in `publishConfig.exports`, which point at the `dist/` that
// `pnpm build` emits with tsc (ESM `.js`, `.d.ts`, source and declaration maps). `internal/` is never exported.
// What a script cannot decide is only checked: Effect-family packages (`effect`, `@effect/*`) and the other
// `@effect-zapier/*` packages are peers (plus devDependencies for the workspace), never dependencies, so an app
// has one copy of each at runtime.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const write = process.argv.includes("--write")

/** The repository the packages are published from (package.json `repository` and `homepage`). */
export const repository = "https://github.com/effect-zapier/effect-zapier"

/** Every library package: a directory under packages/ whose package.json is not private. */
export const libraryPackages = () =>
  fs
    .readdirSync(path.join(root, "packages"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(root, "packages", entry.name))
    .filter((dir) => {
      const file = path.join(dir, "package.json")
      return fs.existsSync(file) && JSON.parse(fs.readFileSync(file, "utf8")).private !== true
    })

const workspaceExports = {
  "./package.json": "./package.json",
  ".": "./src/index.ts",
  "./*": "./src/*.ts",
  "./internal/*": null
}

const publishedExports = {
  "./package.json": "./package.json",
  ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
  "./*": { types: "./dist/*.d.ts", default: "./dist/*.js" },
  "./internal/*": null
}

const files = ["dist", "src", "CHANGELOG.md", "!**/*.tsbuildinfo"]

const isShared = (name) => name === "effect" || name.startsWith("@effect/") || name.startsWith("@effect-zapier/")

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

/** Field order of the written package.json (the rest keeps its order after these). */
const order = [
  "name",
  "version",
  "description",
  "license",
  "repository",
  "homepage",
  "type",
  "sideEffects",
  "engines",
  "exports",
  "files",
  "publishConfig",
  "scripts",
  "dependencies",
  "peerDependencies",
  "peerDependenciesMeta",
  "devDependencies"
]

const shape = (dir) => {
  const problems = []
  const rel = path.relative(root, dir)
  const pkgFile = path.join(dir, "package.json")
  const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"))
  const want = {
    license: "MIT",
    repository: { type: "git", url: `git+${repository}.git`, directory: rel },
    homepage: `${repository}/tree/main/${rel}#readme`,
    type: "module",
    sideEffects: [],
    engines: { node: ">=20" },
    exports: workspaceExports,
    files,
    publishConfig: { access: "public", exports: publishedExports }
  }
  for (const [key, value] of Object.entries(want)) {
    if (!same(pkg[key], value)) {
      problems.push(`${rel}/package.json: "${key}" should be ${JSON.stringify(value)}`)
      pkg[key] = value
    }
  }
  for (const name of Object.keys(pkg.dependencies ?? {})) {
    if (isShared(name)) {
      problems.push(
        `${rel}/package.json: "${name}" is shared at runtime: a peerDependency (and devDependency), not a dependency`
      )
    }
  }
  for (const name of Object.keys(pkg.peerDependencies ?? {})) {
    if (!pkg.devDependencies?.[name]) {
      problems.push(`${rel}/package.json: the peer "${name}" is also needed in devDependencies for the workspace`)
    }
  }
  // tsc emits to dist/ and keeps its build info there too, so deleting dist/ forces the next build to emit again.
  const tsconfigFile = path.join(dir, "tsconfig.src.json")
  const tsconfig = JSON.parse(fs.readFileSync(tsconfigFile, "utf8"))
  const wantOptions = { rootDir: "src", outDir: "dist", tsBuildInfoFile: "dist/.tsbuildinfo" }
  let tsconfigChanged = false
  for (const [key, value] of Object.entries(wantOptions)) {
    if (tsconfig.compilerOptions?.[key] !== value) {
      problems.push(`${rel}/tsconfig.src.json: compilerOptions.${key} should be "${value}"`)
      tsconfig.compilerOptions = { ...tsconfig.compilerOptions, [key]: value }
      tsconfigChanged = true
    }
  }
  const copies = [
    ["LICENSE", () => fs.readFileSync(path.join(root, "LICENSE"), "utf8")],
    ["CHANGELOG.md", () => `# ${pkg.name}\n`],
    ["README.md", () => `# ${pkg.name}\n\n${pkg.description ?? ""}\n`],
    ["docgen.json", () => fs.readFileSync(path.join(root, "scripts/docgen.template.json"), "utf8")]
  ]
  for (const [file, content] of copies) {
    const target = path.join(dir, file)
    const expected = file === "LICENSE" ? content() : undefined
    if (!fs.existsSync(target) || (expected !== undefined && fs.readFileSync(target, "utf8") !== expected)) {
      problems.push(`${rel}/${file}: missing${expected !== undefined ? " or not the root's" : ""}`)
      if (write) fs.writeFileSync(target, content())
    }
  }
  if (!pkg.scripts?.docgen) {
    problems.push(`${rel}/package.json: no "docgen" script`)
    pkg.scripts = { ...pkg.scripts, docgen: "docgen" }
  }
  if (write) {
    const sorted = Object.fromEntries([
      ...order.filter((key) => key in pkg).map((key) => [key, pkg[key]]),
      ...Object.entries(pkg).filter(([key]) => !order.includes(key))
    ])
    fs.writeFileSync(pkgFile, `${JSON.stringify(sorted, null, 2)}\n`)
    if (tsconfigChanged) fs.writeFileSync(tsconfigFile, `${JSON.stringify(tsconfig, null, 2)}\n`)
  }
  return problems
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = libraryPackages().flatMap(shape)
  if (problems.length === 0) {
    process.stdout.write(`package shape: ${libraryPackages().length} packages ok\n`)
  } else if (write) {
    process.stdout.write(`package shape: applied\n${problems.map((p) => `  ${p}`).join("\n")}\n`)
  } else {
    process.stderr.write(
      `package shape: ${problems.length} problem(s); \`node scripts/package-shape.mjs --write\` fixes the mechanical ones\n${problems.map((p) => `  ${p}`).join("\n")}\n`
    )
    process.exit(1)
  }
}
