// Starts the SPA: MicroPython (WebAssembly) plus the app's Python modules, then app.main().
// The build replaces the asset names below with their content-hashed ones.
import { loadMicroPython } from "./__MICROPYTHON_MJS__";

const WASM = "/assets/__MICROPYTHON_WASM__";
const BUNDLE = "/assets/__APP_BUNDLE__";
const MARKDOWN = "/assets/__MARKDOWN_JS__";   // markdown-it + Prism + the bridge (frontend/build.py)
const LAZY = "/assets/__LAZY_BUNDLE__";       // modules outside the first load (frontend/build.py LAZY)

// The Markdown parser (55 KB) loads only where answers are shown: beside the runtime on a chat
// page, else when a page first asks for it (markdown.py: available). Nothing waits for it:
// answers show as plain text until it is there, then the app draws them again (program.py sets
// agentsteadMarkdownReady). A parser that fails to load leaves plain text, not a broken app.
let markdownAsked = false;
function markdown() {
  if (markdownAsked) return;
  markdownAsked = true;
  const s = document.createElement("script");
  s.src = MARKDOWN;
  s.onload = () => globalThis.agentsteadMarkdownReady?.();
  document.head.append(s);
}
globalThis.agentsteadLoadMarkdown = markdown;

function fail(error) {
  console.error(error);
  const root = document.getElementById("app");
  root.textContent = "";
  const p = document.createElement("p");
  p.className = "alert";
  p.setAttribute("role", "alert");
  p.textContent = "Agentstead could not start. Reload the page; if it keeps failing, tell your administrator.";
  root.append(p);
}

// The first page's GET requests start now, while WebAssembly loads, instead of after Python
// has started. The runtime takes a response when it asks for the same URL (once); a guess
// that is not asked for costs one small request. Keep in step with the pages' init().
// Each is read to its end here and handed over as { status, text() } (all program.py reads):
// the app takes it in microtasks, not a task later. The app's first frame waits for them
// (agentsteadFirstFrame, at most EARLY_WAIT_MS), so the first render shows the page's data
// instead of a loading note and a second render a frame or more later. A slower answer is not
// waited for: the page shows its loading state first, as it would without this. The app draws
// as soon as it has handled the last early answer it took (program.py _early_done); the timer
// here is for the rest: a slow answer, or guesses the app did not take. That first render runs in
// a task, not in the next animation frame (painted up to a frame, 16.7 ms, sooner); later renders
// wait for animation frames as before.
const EARLY_WAIT_MS = 100;
let earlyAnswers = [];
globalThis.agentsteadFirstFrame = (draw) => {
  Promise.race([Promise.allSettled(earlyAnswers), new Promise((r) => setTimeout(r, EARLY_WAIT_MS))])
    .then(() => setTimeout(draw, 0));
};
// When the app drew the page's first view into index.html (src/agentstead/first_page), the answers
// it drew it from come with it: the same bodies, so the app's first render here shows the same page
// and takes it over (it replaces the drawn view, which is inert until then). No request is guessed.
function given() {
  const el = document.getElementById("agentstead-early");
  if (!el) return null;
  try {
    return new Map(Object.entries(JSON.parse(el.textContent)).map(([url, [status, body]]) =>
      [url, Promise.resolve({ status, text: () => Promise.resolve(body) })]));
  } catch (error) {
    console.warn(error);
    return null;
  }
}
function early() {
  const started = given() ?? guessed();
  earlyAnswers = [...started.values()];
  globalThis.agentsteadEarly = (url) => {
    const p = started.get(url);
    started.delete(url);
    return p ?? null;
  };
}
function guessed() {
  const path = location.pathname, q = new URLSearchParams(location.search);
  const urls = ["/api/me"];
  const chat = path.match(/^\/chat\/([^/]+)$/);
  if (path === "/agents") urls.push("/api/agents?limit=200", "/api/models");
  else if (chat) urls.push("/api/threads?limit=100", "/api/agents?limit=200", `/api/threads/${chat[1]}?limit=100`,
                           `/api/runs?limit=50&thread_id=${chat[1]}`);
  else if (path === "/chat") urls.push("/api/threads?limit=100", "/api/agents?limit=200");
  else if (path === "/runs" && !q.get("status")) urls.push("/api/runs?limit=100");
  else if (path === "/account") urls.push("/api/tokens");
  else if (path === "/workflows") urls.push("/api/agents?limit=200", "/api/workflows?limit=200");
  else if (path === "/signin") urls.push("/auth/providers");
  return new Map(urls.map((u) => [u, fetch(u, {
    credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => r.text().then((body) => ({ status: r.status, text: () => Promise.resolve(body) })))]));
}

// The bundle's modules (.mpy or .py, see frontend/build.py: bundle) into the runtime's /app.
function unpack(mp, bundle) {
  const view = new DataView(bundle), bytes = new Uint8Array(bundle), utf8 = new TextDecoder();
  for (let at = 0; at < bytes.length;) {
    const n = view.getUint16(at, true);
    const name = utf8.decode(bytes.subarray(at + 2, at + 2 + n));
    const size = view.getUint32(at + 2 + n, true);
    at += 6 + n;
    mp.FS.writeFile(`/app/${name}`, bytes.subarray(at, at + size));
    at += size;
  }
}

function fetched(url) {
  return fetch(url, { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
}

// The modules built apart (frontend/build.py LAZY), fetched once: at start on the page that
// uses them, else when the app asks (runtime.LoadCode). They go into /app as soon as both they
// and the runtime are there; after the app started, agentsteadLazyReady (program.py) tells it.
let lazy = null, runtime = null, lazyBytes = null;
function lazyIn() {
  if (!runtime || !lazyBytes) return;
  unpack(runtime, lazyBytes);
  lazyBytes = null;
  globalThis.agentsteadLazyReady?.();
}
globalThis.agentsteadLazy = () => {
  lazy ??= fetched(LAZY).then((b) => { lazyBytes = b; lazyIn(); }, (e) => { lazy = null; console.warn(e); });
};

try {
  performance.mark("agentstead:boot");
  early();
  if (location.pathname.startsWith("/chat")) markdown();
  if (/^\/(workflows|account|admin)(\/|$)/.test(location.pathname)) globalThis.agentsteadLazy();
  const [mp, bundle] = await Promise.all([
    loadMicroPython({ url: WASM, heapsize: 8 * 1024 * 1024, linebuffer: true,
                      stdout: (line) => console.log(line), stderr: (line) => console.error(line) }),
    fetched(BUNDLE),
  ]);
  performance.mark("agentstead:runtime-ready");
  mp.FS.mkdir("/app");
  unpack(mp, bundle);
  runtime = mp;
  lazyIn();
  // Only /app on the path: each import of a built-in (json, random) would otherwise look for a
  // file of that name in every other entry first, and each miss costs an exception in JavaScript.
  mp.runPython("import sys\nsys.path[:] = ['/app']\nimport app");
  performance.mark("agentstead:app-ready");
  mp.runPython("app.main()");
} catch (error) {
  fail(error);
}
