package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func embedded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(dist, path.Join("dist", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	attrRef = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']([^"']*)["']`)
	cssURL  = regexp.MustCompile(`url\(\s*["']?([^"')]*)["']?\s*\)`)
	anyURL  = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)
	absURL  = regexp.MustCompile(`(?i)https?://[^\s"'<>)]*`)
)

// xmlNamespaces are the only absolute URLs the bundle may contain: they are
// names (createElementNS), never fetched.
var xmlNamespaces = []string{
	"http://www.w3.org/2000/svg",
	"http://www.w3.org/1999/xhtml",
	"http://www.w3.org/1999/xlink",
	"http://www.w3.org/XML/1998/namespace",
	"http://www.w3.org/2000/xmlns/",
}

// TestIndexReferencesOnlyEmbeddedAssets serves the index and every file it
// (and its stylesheets) reference: each must be embedded, served with the
// right content type and cached as immutable; nothing may come from
// another origin.
func TestIndexReferencesOnlyEmbeddedAssets(t *testing.T) {
	h := Handler()
	res := get(t, h, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: Content-Type %q", ct)
	}
	index := body(t, res)
	if !bytes.Equal(index, embedded(t, "index.html")) {
		t.Error("GET / does not serve the embedded index.html")
	}
	if u := anyURL.Find(index); u != nil {
		t.Errorf("index.html references %s: only embedded assets may be used", u)
	}

	var refs []string
	for _, m := range attrRef.FindAllSubmatch(index, -1) {
		ref := string(m[1])
		if strings.HasPrefix(ref, "#") {
			continue // a route of the single-page app
		}
		refs = append(refs, ref)
	}
	if len(refs) < 3 {
		t.Fatalf("index.html references %q: want at least the script, the stylesheet and the icon", refs)
	}
	kinds := map[string]bool{}
	seen := map[string]bool{}
	for len(refs) > 0 {
		ref := refs[0]
		refs = refs[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") || strings.Contains(ref, "..") {
			t.Errorf("reference %q: want a relative path to an embedded asset (no scheme, no absolute path)", ref)
			continue
		}
		res := get(t, h, "/"+ref)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /%s (referenced): %s", ref, res.Status)
			continue
		}
		want := ContentType(ref)
		if got := res.Header.Get("Content-Type"); want == "" || got != want {
			t.Errorf("GET /%s: Content-Type %q, want %q", ref, got, want)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET /%s: Cache-Control %q, want immutable (the name carries a content hash)", ref, got)
		}
		if !regexp.MustCompile(`-[0-9A-Z]{8}\.[a-z0-9]+$`).MatchString(ref) {
			t.Errorf("%s: cached as immutable but has no content hash in its name", ref)
		}
		b := body(t, res)
		if !bytes.Equal(b, embedded(t, ref)) {
			t.Errorf("GET /%s does not serve the embedded file", ref)
		}
		kinds[path.Ext(ref)] = true
		switch path.Ext(ref) {
		case ".css":
			for _, m := range cssURL.FindAllSubmatch(b, -1) {
				u := string(m[1])
				if strings.HasPrefix(u, "data:") {
					continue
				}
				// url() in a stylesheet is relative to the stylesheet.
				refs = append(refs, path.Join(path.Dir(ref), u))
			}
		case ".js":
			for _, u := range absURL.FindAll(b, -1) {
				if !slices.Contains(xmlNamespaces, string(u)) {
					t.Errorf("%s contains the URL %s: the dashboard must not load anything from another origin", ref, u)
				}
			}
			if regexp.MustCompile(`\bimport\s*\(|\bimport\s*[\w{*][^;]*?\bfrom\s*["']`).Match(b) {
				t.Errorf("%s imports another module: the bundle must be self-contained", ref)
			}
		}
	}
	for _, ext := range []string{".js", ".css", ".svg"} {
		if !kinds[ext] {
			t.Errorf("index.html references no %s asset", ext)
		}
	}

	// Every embedded asset is referenced: no stale files.
	assets, err := fs.ReadDir(dist, "dist/assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range assets {
		if !seen["assets/"+e.Name()] {
			t.Errorf("dist/assets/%s is embedded but not referenced", e.Name())
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{
		"/nope", "/assets", "/assets/", "/assets/nope.js", "/dist/", "/dist/index.html", "/manifest.json",
		"/index.htm", "/api/v1/unknown", "/assets/../index.html", "//", "/.", "/favicon.ico",
	} {
		res := get(t, h, p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
		if b := body(t, res); bytes.Contains(b, []byte("<a href")) || bytes.Contains(b, []byte("<pre>")) {
			t.Errorf("GET %s: looks like a directory listing: %s", p, b)
		}
	}
}

func TestMethods(t *testing.T) {
	h := Handler()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q; want 405 and GET, HEAD", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /: %d, %d bytes, %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
	}
}

func TestIndexHeaders(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/index.html"} {
		res := get(t, h, p)
		hd := res.Header
		if hd.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache (the index names the current assets)", p, hd.Get("Cache-Control"))
		}
		if c := hd.Get("Content-Security-Policy"); !strings.Contains(c, "script-src 'self'") || !strings.Contains(c, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, c)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("ETag") == "" {
			t.Errorf("GET %s: nosniff %q, ETag %q", p, hd.Get("X-Content-Type-Options"), hd.Get("ETag"))
		}
		// Revalidation: the same ETag answers 304.
		res2 := get(t, h, p, "If-None-Match", hd.Get("ETag"))
		if res2.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %s, want 304", p, res2.Status)
		}
	}
}

func TestGzip(t *testing.T) {
	h := Handler()
	for p, f := range h.(*handler).files {
		if f.gz == nil {
			continue
		}
		res := get(t, h, p, "Accept-Encoding", "gzip, deflate, br")
		if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("GET %s: Content-Encoding %q, Vary %q", p, res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(b, f.data) {
			t.Errorf("GET %s gzip: %v; same content: %v", p, err, bytes.Equal(b, f.data))
		}
		if res.Header.Get("ETag") == f.etag {
			t.Errorf("GET %s: the gzip and identity encodings share an ETag", p)
		}
		plain := get(t, h, p)
		if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(body(t, plain), f.data) {
			t.Errorf("GET %s without Accept-Encoding: not the plain file", p)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "br, gzip;q=0.5": true, "gzip;q=0": false, "gzip; q=0.000": false,
		"deflate": false, "x-gzip": false, "*": false,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

type manifest struct {
	Sources string           `json:"sources"`
	Files   map[string]int64 `json:"files"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	var m manifest
	if err := json.Unmarshal(embedded(t, "manifest.json"), &m); err != nil {
		t.Fatalf("dist/manifest.json: %v", err)
	}
	return m
}

// sourcesHash is web/build.mjs's sourcesHash: sha256 over
// "sha256(content)  path\n" lines of build.mjs, package.json,
// package-lock.json and src/**, sorted by path.
func sourcesHash(web string) (string, error) {
	files := []string{"build.mjs", "package.json", "package-lock.json"}
	err := filepath.WalkDir(filepath.Join(web, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(web, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	var list strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(web, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&list, "%x  %s\n", sha256.Sum256(b), f)
	}
	sum := sha256.Sum256([]byte(list.String()))
	return hex.EncodeToString(sum[:]), nil
}

// TestBuiltFromCurrentSources fails when web/ changed after dist/ was built.
func TestBuiltFromCurrentSources(t *testing.T) {
	web := filepath.Join("..", "..", "web")
	if _, err := os.Stat(filepath.Join(web, "package.json")); err != nil {
		t.Skipf("no web/ sources next to this package: %v", err)
	}
	got, err := sourcesHash(web)
	if err != nil {
		t.Fatal(err)
	}
	if m := readManifest(t); m.Sources != got {
		t.Errorf("web/ changed since internal/web/dist was built (sources %s, built from %s): run go generate ./internal/web and commit dist/", got[:12], m.Sources[:12])
	}
}

// TestEmbeddedSize keeps the dashboard small and the manifest complete.
func TestEmbeddedSize(t *testing.T) {
	const budget = 300 << 10
	m := readManifest(t)
	var total, gz int64
	n := 0
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "dist/manifest.json" {
			return err
		}
		b, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "dist/")
		if m.Files[name] != int64(len(b)) {
			t.Errorf("%s: %d bytes, manifest says %d", name, len(b), m.Files[name])
		}
		n++
		total += int64(len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(m.Files) {
		t.Errorf("%d files embedded, manifest lists %d", n, len(m.Files))
	}
	served := map[*file]bool{} // "/" and "/index.html" are one file
	for _, f := range Handler().(*handler).files {
		if served[f] {
			continue
		}
		served[f] = true
		if f.gz != nil {
			gz += int64(len(f.gz))
		} else {
			gz += int64(len(f.data))
		}
	}
	t.Logf("embedded dashboard: %d files, %d bytes (%d gzip-compressed as served)", n, total, gz)
	if total > budget {
		t.Errorf("embedded dashboard is %d bytes, over the %d budget", total, budget)
	}
}
