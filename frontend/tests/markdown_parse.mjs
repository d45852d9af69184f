// The browser's Markdown parser (assets/markdown.js: markdown-it, Prism, markdown-bridge.js) in
// Node, for the CPython run of the frontend tests (frontend/tests/mdparser.py): reads a JSON list
// of texts on stdin, prints the JSON list of their token lists. Usage:
//   node frontend/tests/markdown_parse.mjs BUNDLE.js < texts.json
import fs from "node:fs";
import vm from "node:vm";

vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"), { filename: "markdown.js" });
const texts = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write("[" + texts.map((t) => globalThis.agentsteadMarkdown(t)).join(",") + "]");
