// Package remotewrite is the Prometheus remote-write sink: it sends series to
// any receiver of the remote-write 1.0 protocol (Prometheus with
// --web.enable-remote-write-receiver, Mimir, Thanos, VictoriaMetrics, …) —
// how a fleet of agents scales out through the engines people already run.
//
// The WriteRequest protobuf (four small messages) is encoded with
// google.golang.org/protobuf's protowire and compressed with
// klauspost/compress's snappy block format, as the protocol requires, so the
// package does not pull in Prometheus itself.
package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Label is one label pair.
type Label struct{ Name, Value string }

// Sample is one value at a time.
type Sample struct {
	Value float64
	Time  time.Time
}

// Series is a labelled series (its __name__ among the labels) with samples.
type Series struct {
	Labels  []Label
	Samples []Sample
}

// Encode returns the snappy-compressed WriteRequest protobuf of series.
// Labels are sorted by name, as receivers require.
func Encode(series []Series) []byte {
	var req []byte
	for _, s := range series {
		labels := slices.Clone(s.Labels)
		sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
		var ts []byte
		for _, l := range labels {
			var lb []byte
			lb = protowire.AppendTag(lb, 1, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Value)
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		for _, smp := range s.Samples {
			var sb []byte
			sb = protowire.AppendTag(sb, 1, protowire.Fixed64Type)
			sb = protowire.AppendFixed64(sb, math.Float64bits(smp.Value))
			sb = protowire.AppendTag(sb, 2, protowire.VarintType)
			sb = protowire.AppendVarint(sb, uint64(smp.Time.UnixMilli()))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, sb)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappy.Encode(nil, req)
}

// Decode is Encode's inverse (for tests and for a receiver's sake).
func Decode(b []byte) ([]Series, error) {
	raw, err := snappy.Decode(nil, b)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var out []Series
	err = fields(raw, func(num protowire.Number, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		var s Series
		err := fields(v, func(num protowire.Number, v []byte, _ uint64) error {
			switch num {
			case 1:
				var l Label
				err := fields(v, func(num protowire.Number, v []byte, _ uint64) error {
					if num == 1 {
						l.Name = string(v)
					} else if num == 2 {
						l.Value = string(v)
					}
					return nil
				})
				s.Labels = append(s.Labels, l)
				return err
			case 2:
				var smp Sample
				err := fields(v, func(num protowire.Number, v []byte, n uint64) error {
					if num == 1 {
						smp.Value = math.Float64frombits(n)
					} else if num == 2 {
						smp.Time = time.UnixMilli(int64(n))
					}
					return nil
				})
				s.Samples = append(s.Samples, smp)
				return err
			}
			return nil
		})
		out = append(out, s)
		return err
	})
	return out, err
}

// fields walks a message: bytes fields get v, fixed64 and varint fields n.
func fields(b []byte, fn func(protowire.Number, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

// Options configure a Client.
type Options struct {
	URL string
	// Token, when set, is sent as a bearer token.
	Token   string
	Timeout time.Duration // per request (default 10 s)
	// MaxPending bounds the batches kept for retry while the receiver is
	// down (default 60); the oldest is dropped beyond it (Dropped counts).
	MaxPending int
	Client     *http.Client
}

// Client sends batches in order, retrying failed ones.
type Client struct {
	opt     Options
	mu      sync.Mutex
	pending [][]byte
	Dropped uint64
	Sent    uint64
}

// New returns a Client.
func New(opt Options) (*Client, error) {
	if opt.URL == "" {
		return nil, errors.New("remote write: no URL")
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 60
	}
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	return &Client{opt: opt}, nil
}

// Send queues series and sends every pending batch, oldest first; it stops
// at the first failure (the rest stay queued for the next call). A 4xx
// answer other than 429 drops the batch: the receiver will never take it.
func (c *Client) Send(ctx context.Context, series []Series) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(series) > 0 {
		c.pending = append(c.pending, Encode(series))
		if len(c.pending) > c.opt.MaxPending {
			c.pending = c.pending[1:]
			c.Dropped++
		}
	}
	for len(c.pending) > 0 {
		err := c.post(ctx, c.pending[0])
		var perm permanentError
		if errors.As(err, &perm) {
			c.pending = c.pending[1:]
			c.Dropped++
			return err
		}
		if err != nil {
			return err
		}
		c.pending = c.pending[1:]
		c.Sent++
	}
	return nil
}

type permanentError struct{ error }

func (c *Client) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opt.URL, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "netmeter")
	if c.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	}
	resp, err := c.opt.Client.Do(req)
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", c.opt.URL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
		return permanentError{fmt.Errorf("remote write to %s: %s: %s", c.opt.URL, resp.Status, bytes.TrimSpace(msg))}
	}
	return fmt.Errorf("remote write to %s: %s: %s", c.opt.URL, resp.Status, bytes.TrimSpace(msg))
}

// Pending is the number of batches waiting to be sent.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
