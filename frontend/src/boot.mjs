// Starts the SPA: MicroPython (WebAssembly) plus the app's Python modules, then app.main().
// The build replaces the three asset names below with their content-hashed ones.
import { loadMicroPython } from "./__MICROPYTHON_MJS__";

const WASM = "/assets/__MICROPYTHON_WASM__";
const BUNDLE = "/assets/__APP_BUNDLE__";

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

try {
  performance.mark("agentstead:boot");
  const [mp, bundle] = await Promise.all([
    loadMicroPython({ url: WASM, heapsize: 8 * 1024 * 1024, linebuffer: true,
                      stdout: (line) => console.log(line), stderr: (line) => console.error(line) }),
    fetch(BUNDLE, { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error(`${BUNDLE}: HTTP ${r.status}`);
      return r.json();
    }),
  ]);
  performance.mark("agentstead:runtime-ready");
  mp.FS.mkdir("/app");
  for (const [name, source] of Object.entries(bundle.files)) {
    mp.FS.writeFile(`/app/${name}`, source);
  }
  mp.runPython("import sys\nsys.path.insert(0, '/app')\nimport app\napp.main()");
} catch (error) {
  fail(error);
}
