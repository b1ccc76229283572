// Package web serves netmeter's dashboard: a small single-page app (no
// framework; uPlot for time series, d3-force for the topology) built from
// web/ with esbuild and embedded in the binary. Handler serves it; the JSON
// API it reads (api/v1/…, docs/API.md) and its event stream are served by
// internal/api, which mounts Handler at "/".
//
// # Built assets are committed
//
// dist/ holds the built files and is committed, so `go build` and
// `go install` need only Go: no Node.js, no npm, no network. `go generate
// ./internal/web` rebuilds it: `npm ci` installs the exact packages of
// web/package-lock.json (from npm's cache when offline: `npm ci --offline`
// works once the cache holds them), then web/build.mjs bundles them. The
// build is deterministic, so CI can regenerate and fail on
// `git diff --exit-code internal/web/dist`. Building at `go generate` time
// only would make every Go build depend on Node.js and a registry; committing
// costs about 150 KB in the repository, rewritten only when web/ changes.
//
// dist/manifest.json (not served) records a hash of web/'s sources; a test
// fails when they changed and dist/ was not rebuilt.
//
// # What is served
//
// GET and HEAD only. "/" and "/index.html" answer index.html with
// Cache-Control: no-cache (revalidated by its ETag) and a strict Content
// Security Policy (no inline scripts, no other origins); files under
// /assets/ have a content hash in their names and are cached for a year
// (immutable). Every answer has an ETag, nosniff, and an explicit content
// type; text is gzip-compressed when the client accepts it. Anything else
// is 404 — there are no directory listings.
package web
