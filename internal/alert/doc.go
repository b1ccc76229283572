// Package alert evaluates netmeter's built-in alert rules on every
// interval's data and delivers the alerts that start and end.
//
// An [Evaluator] is a sink of the pipeline: [Evaluator.Observe] takes one
// interval's [snapshot.Snapshot], the latest [health.Report] and the latest
// [quota.Result]s, and returns [Alert] events — each alert fires once and
// is resolved once, identified by its labels' fingerprint (Alertmanager's).
// The rule kinds ([Kind]) and their defaults are documented on [Rule]:
//
//   - surge: an interface's, program's or container's rate over the latest
//     window (5m) is more than +200 % of the window before, and at least
//     min_rate (1 MiB/s);
//   - link_saturation: an interface with a known link speed stays at or
//     above 80 % of it, in one direction, for 2m;
//   - interface_errors: any interface error within the window (5m), or
//     more than 1 drop per second averaged over it;
//   - quota: a quota exceeded (critical), over a warn threshold (warning)
//     or forecast to exceed (info);
//   - health: a remote group or monitor degraded in 3 consecutive reports;
//   - new_listener, new_remote (audit): a program listens on a TCP port, or
//     talks to a remote /24 or /64, it had not before, after a 10-minute
//     warm-up that only learns. Countries are not audited: that needs a
//     GeoIP database, which netmeter does not have.
//
// State is bounded: surge tracks at most max_entities entities, the audit
// rules at most max_programs programs of max_per_program items each, and
// past a bound one overflow alert stands for the rest, so a port scan costs
// no more memory than the bounds.
//
// Delivery is a [Sink]: [LogSink] (log/slog), [Webhook] (Alertmanager's
// webhook payload, POSTed with a timeout and retries from a bounded queue
// that drops the oldest event when full) and [Alertmanager] (its API v2,
// re-sending firing alerts as Prometheus does). deploy/prometheus holds
// the same signals as Prometheus alerting rules over netmeter's metrics.
package alert
