package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/netmeter/netmeter/internal/remotewrite"
)

// metricsHandler serves reg in the Prometheus exposition format.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4})
}

// newRegistry has the agent's own process and Go runtime metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// seriesOf turns gathered families into remote-write series at time t:
// counters and gauges as they are, histograms and summaries as Prometheus
// scrapes them (_bucket{le}, _sum, _count, quantiles).
func seriesOf(mfs []*dto.MetricFamily, t time.Time, extra ...remotewrite.Label) []remotewrite.Series {
	var out []remotewrite.Series
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			base := append([]remotewrite.Label{}, extra...)
			for _, lp := range m.GetLabel() {
				base = append(base, remotewrite.Label{Name: lp.GetName(), Value: lp.GetValue()})
			}
			add := func(n string, v float64, more ...remotewrite.Label) {
				ls := append(append([]remotewrite.Label{{Name: "__name__", Value: n}}, base...), more...)
				out = append(out, remotewrite.Series{Labels: ls, Samples: []remotewrite.Sample{{Value: v, Time: t}}})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", float64(b.GetCumulativeCount()), remotewrite.Label{Name: "le", Value: strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)})
				}
				add(name+"_bucket", float64(h.GetSampleCount()), remotewrite.Label{Name: "le", Value: "+Inf"})
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(name, q.GetValue(), remotewrite.Label{Name: "quantile", Value: strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)})
				}
				add(name+"_sum", sm.GetSampleSum())
				add(name+"_count", float64(sm.GetSampleCount()))
			}
		}
	}
	return out
}

// pushMetrics sends reg to a remote-write endpoint every period until ctx
// ends; failures are retried with the next push (bounded), and logged once
// per outage.
func pushMetrics(ctx context.Context, c *remotewrite.Client, reg *prometheus.Registry, period time.Duration, instance string, log *slog.Logger) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		mfs, err := reg.Gather()
		if err != nil {
			log.Warn("gather metrics for remote write", "err", err)
		}
		err = c.Send(ctx, seriesOf(mfs, time.Now(), remotewrite.Label{Name: "instance", Value: instance}, remotewrite.Label{Name: "job", Value: "netmeter"}))
		switch {
		case err != nil && !failing:
			log.Warn("remote write failing; keeping the last batches for retry", "err", err, "pending", c.Pending())
			failing = true
		case err == nil && failing:
			log.Info("remote write recovered", "dropped_batches", c.Dropped)
			failing = false
		}
	}
}
