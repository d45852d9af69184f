// The SPA's streaming work without a browser, this tree against an earlier one: the steadier half
// of bench/frontend/run.py's comparison (no network, no paint, no vsync; the same MicroPython-
// WebAssembly runtime the browser loads, in Node). Per tree, in a fresh interpreter each time, trees
// alternating: a chat page showing a thread of 200 messages, then message.delta events one by one;
// per event: update + view + diff + apply (to frontend/tests/fakedom.py's DOM, in Python).
// (Start-up is measured in the browser by run.py: these are sources, compiled here, not .mpy.)
// The first pair of interpreters warms the engine up and is not counted.
// Usage: node bench/frontend/cpu.mjs BEFORE_DIR [pairs=11] [events=200]
//   (BEFORE_DIR: a checkout of an earlier commit, e.g. `git archive <rev> frontend | tar -x -C DIR`)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const { loadMicroPython } = await import(path.join(root, "frontend", "node_modules", "@micropython",
                                                   "micropython-webassembly-pyscript", "micropython.mjs"));
const [before, pairs = "11", events = "200"] = process.argv.slice(2);
if (!before) { console.error("usage: node bench/frontend/cpu.mjs BEFORE_DIR [pairs] [events]"); process.exit(2); }
const trees = { this: path.join(root, "frontend"), before: path.join(before, "frontend") };

// both trees' chat pages answer to these names: init, update, GotThread, Live, view
const code = `
import sys, js
sys.path.insert(0, '/tests'); sys.path.insert(0, '/app')
now = js.performance.now
import chat, fakedom
try:
    m, fx = chat.init("t1", True)        # before the redesign: init(thread_id, online)
except TypeError:
    m, fx = chat.init("t1")
msgs = []
for i in range(100):
    msgs.append({"id": "u%d" % i, "role": "user", "content": "message %d: " % i + "lorem ipsum " * 8,
                 "seq": 4 * i + 1, "created_at": "2026-01-01T00:00:00Z"})
    msgs.append({"id": "a%d" % i, "role": "assistant", "content": "short reply number %d with a few words" % i,
                 "seq": 4 * i + 3, "run_id": "r%d" % i, "created_at": "2026-01-01T00:00:00Z"})
m, _ = chat.update(chat.GotThread({"id": "t1", "title": "Bench", "messages": msgs, "prev": None}), m)
v = chat.view(m)
applier, root = fakedom.mount(v)
times = []
for k in range(${+events}):
    t = now()
    m, _ = chat.update(chat.Live({"op": "event", "topic": "threads/t1", "seq": 1000 + k, "type": "message.delta",
                                  "data": {"run_id": "rnew", "text": " tok%d" % k}}), m)
    v = fakedom.patch(applier, v, chat.view(m))
    times.append(int((now() - t) * 1000))
assert m.streams["rnew"].endswith(" tok%d" % k)
print("T", " ".join(str(x) for x in times))
`;

function copy(mp, dir, into) {
  mp.FS.mkdir(into);
  for (const n of fs.readdirSync(dir).filter((n) => n.endsWith(".py"))) {
    mp.FS.writeFile(`${into}/${n}`, fs.readFileSync(path.join(dir, n)));
  }
}
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.round(p / 100 * (s.length - 1)))]; };
const res = { this: [], before: [] };
for (let i = 0; i < +pairs; i++) {
  for (const label of (i % 2 ? ["before", "this"] : ["this", "before"])) {
    const got = {};
    const mp = await loadMicroPython({ heapsize: 8 * 1024 * 1024, linebuffer: true,
      stdout: (l) => { got[l[0]] = l.slice(2).split(" ").map(Number); }, stderr: (l) => console.error(l) });
    copy(mp, path.join(trees[label], "src"), "/app");
    copy(mp, path.join(trees[label], "tests"), "/tests");
    mp.runPython(code);
    if (i > 0) res[label].push(...got.T.slice(10));   // the first events warm the page up
  }
}
const ms = (us) => (us / 1000).toFixed(2);
const [a, b] = [res.this, res.before];
console.log(`pairs counted: ${+pairs - 1}; events per stream: ${+events}; ${process.version}`);
console.log("| measure | this | before | this / before |\n|---|---:|---:|---:|");
for (const [label, p] of [["one delta into 200 messages: update + view + diff + apply, ms p50", 50],
                          ["the same, ms p95", 95]]) {
  const [x, y] = [pct(a, p), pct(b, p)];
  console.log(`| ${label} | ${ms(x)} | ${ms(y)} | ${(x / y).toFixed(2)} |`);
}
