"""A page's first view drawn by the app (server-side rendering): the SPA's own init, update and
view (frontend/src, run here under CPython) over the answers of the page's first GET requests,
written into index.html with those answers, so a page load shows the page before WebAssembly has
started; the SPA then takes it over (frontend/src/boot.mjs). docs/architecture.md, "First page"."""
