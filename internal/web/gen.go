package web

// Rebuild dist/ from web/ (needs Node.js ≥ 18 and npm; see doc.go).
//go:generate npm --prefix ../../web ci --prefer-offline --no-audit --no-fund
//go:generate node ../../web/build.mjs
