package engine

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// httpCounts sums the HTTP request counts of the server sockets on port,
// reading until the counts stop changing.
func httpCounts(t *testing.T, e *Engine, port uint16) (map[string]uint64, int) {
	t.Helper()
	perCookie := map[uint64]Socket{}
	var last string
	for range 40 {
		r, err := e.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(r.Live, r.Dead...) {
			if s.Protocol == 6 && s.Local.Port() == port && s.Role == RoleServer {
				perCookie[s.Cookie] = s
			}
		}
		got := map[string]uint64{}
		for _, s := range perCookie {
			for i, n := range s.HTTP {
				if n > 0 {
					got[HTTPMethods[i]] += uint64(n)
				}
			}
		}
		if cur := fmt.Sprint(got, len(perCookie)); cur == last {
			return got, len(perCookie)
		} else {
			last = cur
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("counts never settled")
	return nil, 0
}

func serverPort(t *testing.T, ts *httptest.Server) uint16 {
	t.Helper()
	return netip.MustParseAddrPort(strings.TrimPrefix(strings.TrimPrefix(ts.URL, "http://"), "https://")).Port()
}

// TestHTTPRequestsCounted: N keep-alive requests, M on fresh connections and
// P POSTs whose bodies begin like a request line are N+M+P requests; TLS
// connections count no request.
func TestHTTPRequestsCounted(t *testing.T) {
	e := openEngine(t)
	const keepAlive, fresh, posts = 25, 10, 5
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	defer ts.Close()
	do := func(c *http.Client, method, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/x", strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ka := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for range keepAlive {
		do(ka, "GET", "")
	}
	// A body beginning with "GET " in its own segment must not count.
	for range posts {
		do(ka, "POST", "GET / HTTP/1.1\r\n"+strings.Repeat("x", 100000))
	}
	one := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range fresh {
		do(one, "HEAD", "")
	}
	ka.CloseIdleConnections()
	got, conns := httpCounts(t, e, serverPort(t, ts))
	t.Logf("HTTP requests by method %v over %d server connections", got, conns)
	if got["GET"] != keepAlive || got["HEAD"] != fresh || got["POST"] != posts || len(got) != 3 {
		t.Errorf("counted %v, want GET %d HEAD %d POST %d", got, keepAlive, fresh, posts)
	}
	if conns != 1+fresh {
		t.Errorf("%d server connections, want %d", conns, 1+fresh)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer tlsSrv.Close()
	tc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	const tlsConns = 4
	for range tlsConns {
		resp, err := tc.Get(tlsSrv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	got, conns = httpCounts(t, e, serverPort(t, tlsSrv))
	if len(got) != 0 || conns != tlsConns {
		t.Errorf("TLS: %v requests over %d connections, want none over %d", got, conns, tlsConns)
	}
}
