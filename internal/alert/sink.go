package alert

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
)

// Sink delivers alert events. Send must not block on the network: sinks
// that deliver remotely queue the events and report failures in their
// stats, not to the caller.
type Sink interface {
	Send(ctx context.Context, alerts []Alert) error
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("alert sink closed")

// LogSink writes each event as one structured log record: warn for a
// firing alert, info for a resolved one.
type LogSink struct{ log *slog.Logger }

// NewLogSink returns a sink that logs through l.
func NewLogSink(l *slog.Logger) *LogSink { return &LogSink{log: l} }

// Send logs every event.
func (s *LogSink) Send(ctx context.Context, alerts []Alert) error {
	for _, a := range alerts {
		level := slog.LevelWarn
		if a.Status == StatusResolved {
			level = slog.LevelInfo
		}
		attrs := []slog.Attr{
			slog.String("status", string(a.Status)),
			slog.String("alertname", a.Labels["alertname"]),
			slog.String("severity", a.Labels["severity"]),
			slog.String("fingerprint", a.Fingerprint),
			slog.Time("starts_at", a.StartsAt),
		}
		if !a.EndsAt.IsZero() {
			attrs = append(attrs, slog.Time("ends_at", a.EndsAt))
		}
		var labels []any
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			if k != "alertname" && k != "severity" {
				labels = append(labels, slog.String(k, a.Labels[k]))
			}
		}
		attrs = append(attrs, slog.Group("labels", labels...), slog.String("description", a.Annotations["description"]))
		s.log.LogAttrs(ctx, level, a.Annotations["summary"], attrs...)
	}
	return nil
}

// Fanout sends every event to each sink, in order, and joins their errors.
func Fanout(sinks ...Sink) Sink { return fanout(sinks) }

type fanout []Sink

func (f fanout) Send(ctx context.Context, alerts []Alert) error {
	var errs []error
	for _, s := range f {
		if err := s.Send(ctx, alerts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
