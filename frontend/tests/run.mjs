// The frontend's own test runner: the app's Python modules and the test modules in
// this folder, run under the real MicroPython WebAssembly runtime (the one the
// browser loads) in Node. Usage: node frontend/tests/run.mjs [name-substring ...]
// Prints one line per test and a summary; exits 1 when a test fails.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "..", "src");
const pkg = path.join(here, "..", "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");
const { loadMicroPython } = await import(pkg);

// The browser's Markdown bundle (markdown-it, Prism, markdown-bridge.js), as the page loads it
// before the app: tests/unit/test_frontend_wasm.py writes it from frontend/build.py.
const markdown = path.join(here, "..", "node_modules", ".agentstead", "markdown.js");
if (fs.existsSync(markdown)) vm.runInThisContext(fs.readFileSync(markdown, "utf8"), { filename: "markdown.js" });

const out = [];
const mp = await loadMicroPython({
  heapsize: 64 * 1024 * 1024, linebuffer: true,
  stdout: (line) => { out.push(line); console.log(line); },
  stderr: (line) => console.error(line),
});

function copy(dir, into) {
  mp.FS.mkdir(into);
  const names = fs.readdirSync(dir).filter((n) => n.endsWith(".py")).sort();
  for (const n of names) mp.FS.writeFile(`${into}/${n}`, fs.readFileSync(path.join(dir, n)));
  return names;
}
copy(src, "/app");
const tests = copy(here, "/tests").filter((n) => n.startsWith("test_"));
const only = process.argv.slice(2);
const modules = tests.map((n) => n.slice(0, -3)).filter((m) => !only.length || only.some((o) => m.includes(o)));

const driver = `
import sys, time
sys.path.insert(0, "/tests")
sys.path.insert(0, "/app")
passed = failed = 0
for name in ${JSON.stringify(modules)}:
    t0 = time.ticks_ms()
    mod = __import__(name)
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        try:
            fn()
            passed += 1
            print("ok   %s.%s" % (name, attr))
        except Exception as e:
            failed += 1
            print("FAIL %s.%s" % (name, attr))
            sys.print_exception(e)
    print("#    %s: %d ms" % (name, time.ticks_diff(time.ticks_ms(), t0)))
print("SUMMARY %d passed, %d failed under %s" % (passed, failed, sys.implementation._machine))
`;
try {
  mp.runPython(driver);
} catch (error) {
  console.error(String(error));
  process.exit(2);
}
const summary = out.findLast((l) => l.startsWith("SUMMARY "));
if (!summary) process.exit(2);
const m = summary.match(/SUMMARY (\d+) passed, (\d+) failed/);
process.exit(m && Number(m[2]) === 0 && Number(m[1]) > 0 ? 0 : 1);
