package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed dist
var dist embed.FS

// contentTypes is explicit: mime.TypeByExtension reads the host's
// /etc/mime.types, which may say application/javascript or nothing.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".svg":   "image/svg+xml",
	".txt":   "text/plain; charset=utf-8",
	".json":  "application/json",
	".png":   "image/png",
	".woff2": "font/woff2",
}

// csp allows nothing but this origin: no inline script or style, no CDN.
// (Scripts set element styles through the CSSOM, which style-src allows;
// checked in Chromium with this policy: no violation on any page.)
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ContentType returns the Content-Type the handler sends for a file name,
// "" for an extension it does not serve.
func ContentType(name string) string { return contentTypes[path.Ext(name)] }

type file struct {
	name  string
	data  []byte
	gz    []byte // nil: not worth compressing
	ctype string
	etag  string
	cache string
	index bool
}

type handler struct {
	files map[string]*file // by URL path
}

var load = sync.OnceValues(func() (*handler, error) { return newHandler(dist) })

// Handler serves the embedded dashboard. It panics if the embedded files
// are inconsistent, which the package's tests rule out.
func Handler() http.Handler {
	h, err := load()
	if err != nil {
		panic(err)
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	sub, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	h := &handler{files: map[string]*file{}}
	add := func(name string, index bool) error {
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			return fmt.Errorf("web: embedded %s: %w", name, err)
		}
		ct := ContentType(name)
		if ct == "" {
			return fmt.Errorf("web: embedded %s: no content type for %q", name, path.Ext(name))
		}
		sum := sha256.Sum256(data)
		f := &file{name: name, data: data, ctype: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, index: index}
		if index {
			f.cache = "no-cache"
		} else {
			f.cache = "public, max-age=31536000, immutable"
		}
		if ct != "image/png" && ct != "font/woff2" && len(data) > 1024 {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(data)
			zw.Close()
			if b.Len() < len(data)*9/10 {
				f.gz = b.Bytes()
			}
		}
		if index {
			h.files["/"] = f
			h.files["/index.html"] = f
		} else {
			h.files["/"+name] = f
		}
		return nil
	}
	if err := add("index.html", true); err != nil {
		return nil, err
	}
	assets, err := fs.ReadDir(sub, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: embedded assets: %w", err)
	}
	for _, e := range assets {
		if e.IsDir() {
			continue
		}
		if err := add("assets/"+e.Name(), false); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f := h.files[r.URL.Path]
	if f == nil {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	hd.Set("X-Content-Type-Options", "nosniff")
	if f.index {
		hd.Set("Content-Security-Policy", csp)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
	}
	data, etag := f.data, f.etag
	if f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			data = f.gz
			etag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("ETag", etag)
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(data))
}

// acceptsGzip reads Accept-Encoding: gzip with a non-zero q.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
