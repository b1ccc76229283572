// Package diagnose answers "why is dropped growing?" with the bottom-up walk
// an engineer does by hand: physical and driver (link, carrier, NIC counters,
// rings), kernel (softnet backlog, qdiscs, netfilter, conntrack, the kernel's
// drop reasons), protocol (SNMP counters as rates) and application (sockets
// whose queues grow or that drop, with their process).
//
// It works in three steps that know nothing of each other's I/O:
//
//   - a [Collector] takes two readings of every layer a window apart and
//     returns [Evidence]: counters at the start and end of the window, gauges,
//     and notes for what does not apply or could not be read;
//   - [Rules] turns Evidence into [Finding]s. Only counters that grew during
//     the window decide a finding; lifetime totals are context;
//   - [NewReport] and its renderers print a report as text or as JSON (the
//     schema is documented and versioned in docs/DIAGNOSE.md).
package diagnose
