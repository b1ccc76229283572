package alert

import (
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Status says whether an [Alert] event starts or ends an alert.
type Status string

// The two events of an alert's life.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one event: an alert that starts firing or is resolved. The
// JSON names are Alertmanager's, so the webhook body is the payload
// Alertmanager's own webhook receivers read.
type Alert struct {
	Status Status `json:"status"`
	// Labels identify the alert: alertname (the rule's name), severity,
	// kind (the rule's kind), the rule's and the evaluator's extra labels
	// and the entity's (interface, netns, program, container, direction,
	// quota, status, group, monitor, proto, port, subnet, overflow).
	Labels map[string]string `json:"labels"`
	// Annotations carry the numbers: summary (one line) and description.
	Annotations map[string]string `json:"annotations"`
	// StartsAt is when the condition began (for link_saturation, the start
	// of the sustained period; for health, when the state was entered).
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is zero while firing and the resolution time once resolved.
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL,omitempty"`
	// Fingerprint is Alertmanager's fingerprint of the labels (FNV-1a 64
	// over the sorted names and values), in 16 hex digits.
	Fingerprint string `json:"fingerprint"`
}

// clone returns a deep copy, so that events handed out share no maps with
// the evaluator's state.
func (a Alert) clone() Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	return a
}

// Fingerprint computes Alertmanager's (prometheus/common model.LabelSet)
// fingerprint of a label set: FNV-1a 64 over each label, sorted by name,
// as name, 0xff, value, 0xff.
func Fingerprint(labels map[string]string) string {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
		sep      = 0xff
	)
	h := uint64(offset64)
	add := func(s string) {
		for i := range len(s) {
			h ^= uint64(s[i])
			h *= prime64
		}
		h ^= sep
		h *= prime64
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		add(k)
		add(labels[k])
	}
	s := strconv.FormatUint(h, 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

// labelValueOK: Alertmanager refuses label values that are not UTF-8.
func labelValueOK(s string) bool { return utf8.ValidString(s) }

// cleanLabel makes an entity name (a comm, an interface) a valid label
// value: invalid UTF-8 bytes become U+FFFD.
func cleanLabel(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, r) // invalid bytes decode as utf8.RuneError
	}
	return string(b)
}
