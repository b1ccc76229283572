package remotewrite

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/promtest"
)

func TestEncodeDecode(t *testing.T) {
	now := time.UnixMilli(1763900000123)
	in := []Series{
		{Labels: []Label{{"device", "eth0"}, {"__name__", "netmeter_network_receive_bytes_total"}}, Samples: []Sample{{123456789012, now}}},
		{Labels: []Label{{"__name__", "x"}}, Samples: []Sample{{0.25, now}, {-1, now.Add(time.Second)}}},
	}
	out, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Series{
		{Labels: []Label{{"__name__", "netmeter_network_receive_bytes_total"}, {"device", "eth0"}}, Samples: in[0].Samples},
		in[1],
	}
	for i := range want {
		for j := range want[i].Samples {
			want[i].Samples[j].Time = time.UnixMilli(want[i].Samples[j].Time.UnixMilli())
		}
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, want)
	}
	if _, err := Decode([]byte("not snappy")); err == nil {
		t.Error("garbage decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]Series{{Labels: []Label{{"a", "b"}}, Samples: []Sample{{1, time.Now()}}}}))
	f.Fuzz(func(t *testing.T, b []byte) { Decode(b) })
}

func TestRetryAndBounds(t *testing.T) {
	var status atomic.Int32
	status.Store(503)
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if _, err := Decode(b); err != nil {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(int(status.Load()))
		if status.Load() == 204 {
			got.Add(1)
		}
	}))
	defer srv.Close()
	c, _ := New(Options{URL: srv.URL, Token: "t", MaxPending: 3})
	s := []Series{{Labels: []Label{{"__name__", "m"}}, Samples: []Sample{{1, time.Now()}}}}
	for range 5 { // receiver down: kept, bounded
		if err := c.Send(context.Background(), s); err == nil {
			t.Fatal("503 reported as success")
		}
	}
	if c.Pending() != 3 || c.Dropped != 2 {
		t.Errorf("pending %d dropped %d, want 3 and 2", c.Pending(), c.Dropped)
	}
	status.Store(204)
	if err := c.Send(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 3 || c.Pending() != 0 || c.Sent != 3 {
		t.Errorf("delivered %d, pending %d, sent %d; want 3, 0, 3", got.Load(), c.Pending(), c.Sent)
	}
	status.Store(400) // a batch the receiver refuses for good is dropped, not retried forever
	if err := c.Send(context.Background(), s); err == nil || c.Pending() != 0 {
		t.Errorf("400: err %v, pending %d", err, c.Pending())
	}
}

// The remote-write path into a real Prometheus: the series sent come back
// from PromQL with their labels and value.
func TestRealPrometheusReceiver(t *testing.T) {
	base := promtest.Start(t)
	c, _ := New(Options{URL: base + "/api/v1/write"})
	now := time.Now()
	s := []Series{{Labels: []Label{{"__name__", "netmeter_network_receive_bytes_total"}, {"device", "nmt0"}, {"instance", "agent-1"}},
		Samples: []Sample{{1000, now.Add(-2 * time.Second)}, {3000, now}}}}
	if err := c.Send(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	v, ok := promtest.Query(t, base, `netmeter_network_receive_bytes_total{device="nmt0",instance="agent-1"}`)
	if !ok || v != 3000 {
		t.Errorf("PromQL after remote write: %v %v, want 3000", v, ok)
	}
}
