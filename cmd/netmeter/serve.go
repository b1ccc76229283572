package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/alert"
	"github.com/netmeter/netmeter/internal/api"
	"github.com/netmeter/netmeter/internal/audit"
	"github.com/netmeter/netmeter/internal/config"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/ipfix"
	"github.com/netmeter/netmeter/internal/metrics"
	"github.com/netmeter/netmeter/internal/pipeline"
	"github.com/netmeter/netmeter/internal/quota"
	"github.com/netmeter/netmeter/internal/record"
	"github.com/netmeter/netmeter/internal/remotewrite"
	"github.com/netmeter/netmeter/internal/selflimit"
	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/web"
)

// historyFile is the database under --data-dir.
const historyFile = "history.db"

// openHistory opens the history store under --data-dir in --timezone.
func (a *app) openHistory(create bool) (*history.Store, error) {
	loc, err := time.LoadLocation(a.cfg.Timezone)
	if err != nil {
		return nil, usageError{fmt.Errorf("--timezone: %w", err)}
	}
	path := filepath.Join(a.cfg.DataDir, historyFile)
	if !create {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no history at %s: run 'netmeter serve' (with the same --data-dir) to record it", path)
		}
	} else if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create --data-dir: %w", err)
	}
	return history.Open(history.Options{Path: path, Location: loc, Retention: a.cfg.Retention})
}

func newServe(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the agent: collect continuously and keep the history (reports, quotas) and the billing ledger",
		Long: `serve collects interfaces and, with the eBPF engine, processes, containers and
TCP health, and writes every interval's traffic to the history database in
--data-dir (read by 'netmeter report' and 'netmeter quota check'), and the
billing ledger to --state-file. It stops on SIGINT or SIGTERM after a last
reading, so nothing counted is lost; traffic the kernel counted on
interfaces while it was stopped is added when it starts again.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context())
		},
	}
}

func (a *app) serve(ctx context.Context) error {
	token := ""
	if a.cfg.TokenFile != "" {
		b, err := os.ReadFile(a.cfg.TokenFile)
		if err != nil {
			return usageError{fmt.Errorf("--auth-token-file: %w", err)}
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return usageError{fmt.Errorf("--auth-token-file %s is empty", a.cfg.TokenFile)}
		}
	}
	if a.cfg.CPULimit > 0 || a.cfg.MemoryLimit > 0 {
		ap, err := selflimit.Apply(os.Getpid(), selflimit.Limits{CPU: a.cfg.CPULimit, Memory: a.cfg.MemoryLimit})
		if err != nil {
			return fmt.Errorf("--cpu-limit/--memory-limit: %w", err)
		}
		a.log.Info("resource limits applied", "cgroups", ap.String(), "cpu_cores", a.cfg.CPULimit, "memory_bytes", a.cfg.MemoryLimit)
		defer ap.Remove() // back to where it was, and the cgroup removed
	}
	mopt := metrics.Options{Version: version, MaxPrograms: a.cfg.MetricsTop, MaxContainers: 5 * a.cfg.MetricsTop, MaxGroups: a.cfg.MetricsTop * 8 / 5}
	// The exporter is built once the analyzer (whose groups it uses) exists;
	// reg holds it for /metrics and remote write.
	var exp *metrics.Exporter
	reg := newRegistry()
	srv, err := api.New(api.Options{Listen: a.cfg.Listen, TLSCert: a.cfg.TLSCert, TLSKey: a.cfg.TLSKey, Token: token, UI: web.Handler()})
	if err != nil {
		return usageError{err}
	}
	st, err := a.openHistory(true)
	if err != nil {
		return err
	}
	defer st.Close()
	var flowExp *ipfix.Exporter
	if a.cfg.IPFIX != "" {
		if flowExp, err = ipfix.New(ipfix.Options{Collector: a.cfg.IPFIX}); err != nil {
			return usageError{fmt.Errorf("--ipfix-collector: %w", err)}
		}
		defer flowExp.Close()
	}
	var alerts *alert.Evaluator
	var alertSink alert.Sink
	var closeSinks []func(context.Context) error
	if !a.cfg.Alerts.Disabled {
		rules := a.cfg.Alerts.Rules
		if len(rules) == 0 {
			rules = alert.Defaults()
		}
		host, _ := os.Hostname()
		if alerts, err = alert.New(rules, alert.WithLabels(map[string]string{"instance": host})); err != nil {
			return usageError{fmt.Errorf("alerts: %w", err)}
		}
		sinks := []alert.Sink{alert.NewLogSink(a.log)}
		if u := a.cfg.Alerts.Webhook; u != "" {
			wh, err := alert.NewWebhook(u)
			if err != nil {
				return usageError{fmt.Errorf("alerts: webhook: %w", err)}
			}
			sinks, closeSinks = append(sinks, wh), append(closeSinks, wh.Close)
		}
		if u := a.cfg.Alerts.Alertmanager; u != "" {
			am, err := alert.NewAlertmanager(u)
			if err != nil {
				return usageError{fmt.Errorf("alerts: alertmanager: %w", err)}
			}
			sinks, closeSinks = append(sinks, am), append(closeSinks, am.Close)
		}
		alertSink = alert.Fanout(sinks...)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, c := range closeSinks {
				c(ctx)
			}
		}()
	}
	var audlog *audit.Log
	if a.cfg.AuditLog != "" {
		if audlog, err = audit.Open(audit.Options{Path: a.cfg.AuditLog}); err != nil {
			return err
		}
		defer audlog.Close()
	}
	rec, err := record.New(st, record.Options{GapAfter: max(5*time.Second, 2*a.cfg.Interval)})
	if err != nil {
		return err
	}
	a.ledger = a.cfg.Engine != "off"
	var recErr error
	ch, stop, err := a.stream(ctx, true, func(loop *aggregate.Loop) error {
		var an *health.Analyzer
		if loop.Flows != nil {
			var err error
			if an, err = pipeline.Analyze(loop, a.cfg.Health); err != nil {
				return err
			}
			// The metrics' groups are the analyzer's.
			mopt.GroupOf = an.GroupOf
		}
		var err error
		if exp, err = metrics.New(mopt); err != nil {
			return err
		}
		reg.MustRegister(exp)
		srv.SetMetrics(metricsHandler(reg))
		var lastQuota time.Time
		var quotas []quota.Result
		lastPoll := time.Now()
		srv = srv.With(an, st)
		qs := a.cfg.Quotas
		srv.WithBilling(func(now time.Time) ([]quota.Result, error) {
			return evalQuotas(st, qs, "", now)
		}, loop.Ledger)
		// Bind before collecting: a port in use fails the start, not later.
		addr, err := srv.Listen()
		if err != nil {
			return err
		}
		a.log.Info("listening", "addr", addr.String())
		prev := loop.Observe // the analyzer's: it sees the snapshot first
		loop.Observe = func(s *snapshot.Snapshot) {
			if prev != nil {
				prev(s)
			}
			srv.Update(s)
			in := metrics.Input{Snapshot: s, PollDuration: time.Since(lastPoll) - s.Interval}
			lastPoll = time.Now()
			if in.PollDuration < 0 {
				in.PollDuration = 0
			}
			if an != nil {
				r := an.Health()
				in.Health = &r
			}
			if len(a.cfg.Quotas) > 0 {
				if s.Time.Sub(lastQuota) >= 15*time.Second {
					qs, qerr := evalQuotas(st, a.cfg.Quotas, "", s.Time)
					if qerr != nil {
						a.log.Warn("quota usage not evaluated; the last values are kept", "err", qerr)
					} else {
						quotas = qs
					}
					lastQuota = s.Time
				}
				in.Quotas = quotas
			}
			if loop.Ledger != nil {
				in.Ledger = metrics.LedgerOf(loop.Ledger, s.Time)
			}
			exp.Update(in)
			if alerts != nil {
				var rep health.Report
				if in.Health != nil {
					rep = *in.Health
				}
				if evs := alerts.Observe(s.Time, s, rep, in.Quotas); len(evs) > 0 {
					if err := alertSink.Send(context.Background(), evs); err != nil {
						a.log.Warn("alert delivery", "err", err)
					}
				}
			}
			if flowExp != nil {
				if err := flowExp.Export(s); err != nil {
					a.log.Warn("IPFIX export failed", "err", err)
				}
			}
			if audlog != nil && loop.Flows != nil {
				ctrs := loop.Flows.ProcessContainers()
				if err := audlog.Observe(s, func(pid int) string { return ctrs[pid] }); err != nil {
					a.log.Warn("audit log write failed", "err", err)
				}
			}
			// In the loop: the final reading at shutdown is recorded too.
			if err := rec.AddWith(s, analysisDeltas(an)); err != nil {
				if recErr == nil {
					a.log.Warn("history write failed; the deltas are kept and retried", "err", err)
				}
				recErr = err
			} else if recErr != nil {
				a.log.Info("history writes resumed")
				recErr = nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		if err := st.Run(runCtx); err != nil && runCtx.Err() == nil {
			a.log.Warn("history pruning stopped", "err", err)
		}
	}()
	a.log.Info("serving", "data_dir", a.cfg.DataDir, "interval", a.cfg.Interval)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				a.reload()
			case <-runCtx.Done():
				return
			}
		}
	}()
	if a.cfg.RemoteWrite != "" {
		rw, err := remotewrite.New(remotewrite.Options{URL: a.cfg.RemoteWrite, Token: token})
		if err != nil {
			return usageError{fmt.Errorf("--remote-write-url: %w", err)}
		}
		host, _ := os.Hostname()
		go pushMetrics(runCtx, rw, reg, a.cfg.RWInterval, host, a.log)
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(runCtx) }()
	for range ch {
	}
	err = stop()
	stopRun()
	if herr := <-httpErr; herr != nil && err == nil {
		err = fmt.Errorf("http: %w", herr)
	}
	return err
}

// analysisDeltas are the latest interval's bytes per remote group and per
// monitor (IP bytes; packets are not split by group).
func analysisDeltas(an *health.Analyzer) map[history.Entity]history.Counters {
	if an == nil {
		return nil
	}
	out := map[history.Entity]history.Counters{}
	if flows, err := an.TopFlows(time.Nanosecond, "bytes", 0); err == nil { // the latest interval
		for _, f := range flows {
			e := history.Entity{Kind: history.KindGroup, Name: f.Group}
			c := out[e]
			c.RxBytes += f.RxBytes
			c.TxBytes += f.TxBytes
			out[e] = c
		}
	}
	for _, m := range an.Monitors() {
		if n := len(m.Points); n > 0 {
			p := m.Points[n-1]
			e := history.Entity{Kind: history.KindMonitor, Name: m.Name}
			out[e] = history.Counters{RxBytes: p.RxBytes, TxBytes: p.TxBytes}
		}
	}
	return out
}

// reload re-reads the configuration on SIGHUP. A configuration that does not
// load is reported and the running one kept; the log level changes at once;
// every other changed setting is named as taking effect at the next start.
func (a *app) reload() {
	cfg, err := config.Load(a.flags, os.Getenv)
	if err != nil {
		a.log.Error("config reload failed; keeping the running configuration", "err", err)
		return
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	a.level.Set(lvl)
	var restart []string
	ov, cv := reflect.ValueOf(a.cfg), reflect.ValueOf(cfg)
	for i := range ov.NumField() {
		name := ov.Type().Field(i).Name
		switch name {
		case "LogLevel", "ConfigFile", "Quotas":
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), cv.Field(i).Interface()) {
			restart = append(restart, name)
		}
	}
	a.log.Info("config reloaded", "file", cfg.ConfigFile, "log_level", lvl.String(), "need_restart", restart)
	if !reflect.DeepEqual(a.cfg.Quotas, cfg.Quotas) {
		a.log.Info("quotas changed: 'netmeter quota check' reads the config itself, no restart needed")
	}
	a.cfg.LogLevel = cfg.LogLevel
}
