#!/usr/bin/env bash
# bench/overhead.sh — netmeter's overhead on loopback TCP throughput, side by side
# with a baseline and with nethogs, in one run.
#
# Phases, interleaved round by round (the order rotates every round) so drift on
# a noisy machine hits every phase alike:
#   baseline   iperf3 alone
#   baseline2  iperf3 alone again: an A/A control, its ratio to baseline is the noise floor
#   netmeter   iperf3 while `netmeter top --json --watch 1 --engine on` runs
#              (engine and TCP health hooks: the default)
#   netmeter-nohealth  the same with --tcp-health=false (opt-in phase: add it to PHASES)
#   nethogs    iperf3 while `nethogs -a -t lo` runs
#
# Each run: one `iperf3 -s -1` server and one `iperf3 -c 127.0.0.1 -t DURATION -J`
# client on loopback. The monitor is started first and given time to attach;
# its CPU time (utime+stime of /proc/PID/stat, all threads) is read just before
# the client starts and just after it ends, so start-up cost is reported apart.
#
# Output: a table on stdout; every run as CSV and the summary as JSON in $OUT_DIR.
#
# Environment:
#   QUICK=1          ~1 minute: DURATION=3, ROUNDS=3
#   DURATION=10      seconds per iperf3 run
#   ROUNDS=4         repetitions of every phase
#   PORT=5399        iperf3 port
#   IPERF_AFFINITY=  e.g. "0,1": pin the iperf3 client to CPU 0 and the server to CPU 1 (iperf3 -A)
#   NETMETER=bin/netmeter   binary to measure (built with `make build` if missing)
#   OUT_DIR=/tmp/netmeter-bench.XXXX  where results go
#   PHASES="baseline baseline2 netmeter nethogs"
#
# Needs root (the eBPF engine, nethogs' capture). Installs iperf3, nethogs and
# python3 with apt-get when they are missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [[ "${QUICK:-0}" == 1 ]]; then
	DURATION=${DURATION:-3}
	ROUNDS=${ROUNDS:-3}
else
	DURATION=${DURATION:-10}
	ROUNDS=${ROUNDS:-4}
fi
PORT=${PORT:-5399}
IPERF_AFFINITY=${IPERF_AFFINITY:-}
iperf_extra=()
if [[ -n "$IPERF_AFFINITY" ]]; then iperf_extra=(-A "$IPERF_AFFINITY"); fi
NETMETER=${NETMETER:-bin/netmeter}
PHASES=${PHASES:-baseline baseline2 netmeter nethogs}
read -r -a PHASE_LIST <<<"$PHASES"
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/netmeter-bench.XXXXXX)}
mkdir -p "$OUT_DIR"
CSV="$OUT_DIR/runs.csv"
SUMMARY="$OUT_DIR/summary.json"

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ $(id -u) == 0 ]] || die "run as root (the eBPF engine and nethogs need it)"

# --- dependencies ---------------------------------------------------------
missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v nethogs >/dev/null || missing+=(nethogs)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ ! -x "$NETMETER" ]]; then
	log "building $NETMETER"
	make build BIN="$NETMETER" >&2
fi

CLK_TCK=$(getconf CLK_TCK)

# --- process bookkeeping: only PIDs started here are ever killed ------------
declare -A STARTED=()
stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL
	local pid=$1 i
	[[ -n "${STARTED[$pid]:-}" ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "STARTED[$pid]"
}
cleanup() {
	local pid
	for pid in "${!STARTED[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ticks PID: utime+stime of the whole thread group, in clock ticks (10 ms
# resolution: too coarse for a monitor that sleeps most of the time; kept as a check).
cpu_ticks() {
	local stat rest
	local -a f
	stat=$(<"/proc/$1/stat")
	rest=${stat##*) } # fields from 3 (state) on; comm may hold spaces
	read -r -a f <<<"$rest"
	echo $((f[11] + f[12])) # utime is field 14, stime field 15
}

# cpu_ns PID: CFS run time (user+system) summed over the process's threads, in
# nanoseconds, from /proc/PID/task/*/sched (microsecond precision). A thread that
# exits between two reads takes its time with it; Go and nethogs keep theirs.
cpu_ns() {
	{ cat "/proc/$1"/task/*/sched 2>/dev/null || true; } |
		awk '$1 == "se.sum_exec_runtime" { s += $3 } END { printf "%.0f\n", s * 1e6 }'
}

# host_busy: busy jiffies of all CPUs (user+nice+system+irq+softirq+steal).
host_busy() {
	local user nice system irq softirq steal _
	read -r _ user nice system _ _ irq softirq steal _ </proc/stat
	echo $((user + nice + system + irq + softirq + steal))
}

wait_listen() { # wait_listen PORT: until something listens on 127.0.0.1:PORT
	local i
	for ((i = 0; i < 100; i++)); do
		if ss -Htln "sport = :$1" | grep -q .; then return 0; fi
		sleep 0.05
	done
	die "iperf3 server did not listen on port $1"
}

echo "phase,round,run,gbps,sent_bytes,iperf_sender_cpu_pct,iperf_receiver_cpu_pct,monitor_cpu_s,monitor_cpu_ticks_s,monitor_startup_cpu_s,monitor_seen_bytes,host_busy_s,seconds" >"$CSV"

# run_one PHASE ROUND RUN
run_one() {
	local phase=$1 round=$2 run=$3
	local tag="$OUT_DIR/${phase}-r${round}"
	local mon_pid="" mon_out="$tag.monitor.out" mon_err="$tag.monitor.err"
	local t0 t1 c0=0 c1=0 k0=0 k1=0 cstart=0 h0 h1 srv_pid i

	case $phase in
	baseline*) ;;
	netmeter | netmeter-nohealth)
		local extra=()
		[[ $phase == netmeter-nohealth ]] && extra=(--tcp-health=false)
		"$NETMETER" top --json --watch 1 --engine on "${extra[@]}" >"$mon_out" 2>"$mon_err" &
		mon_pid=$!
		STARTED[$mon_pid]=1
		cstart=$(cpu_ns "$mon_pid")
		# The first snapshot is printed after the engine is attached and one interval passed.
		for ((i = 0; i < 300; i++)); do
			[[ -s "$mon_out" ]] && break
			kill -0 "$mon_pid" 2>/dev/null || die "netmeter exited: $(cat "$mon_err")"
			sleep 0.1
		done
		[[ -s "$mon_out" ]] || die "netmeter printed nothing in 30 s: $(cat "$mon_err")"
		;;
	nethogs)
		nethogs -a -t -v 2 -d 1 lo >"$mon_out" 2>"$mon_err" </dev/null &
		mon_pid=$!
		STARTED[$mon_pid]=1
		cstart=$(cpu_ns "$mon_pid")
		for ((i = 0; i < 300; i++)); do
			grep -q '^Refreshing' "$mon_out" 2>/dev/null && break
			kill -0 "$mon_pid" 2>/dev/null || die "nethogs exited: $(cat "$mon_err" "$mon_out")"
			sleep 0.1
		done
		;;
	*) die "unknown phase $phase" ;;
	esac

	iperf3 -s -1 -p "$PORT" >"$tag.server.log" 2>&1 &
	srv_pid=$!
	STARTED[$srv_pid]=1
	wait_listen "$PORT"

	if [[ -n "$mon_pid" ]]; then
		c0=$(cpu_ns "$mon_pid")
		k0=$(cpu_ticks "$mon_pid")
	fi
	h0=$(host_busy)
	t0=$(date +%s.%N)
	if ! timeout $((DURATION + 30)) iperf3 -c 127.0.0.1 -p "$PORT" -t "$DURATION" "${iperf_extra[@]}" -J >"$tag.iperf.json"; then
		die "iperf3 client failed: $(head -c 2000 "$tag.iperf.json")"
	fi
	t1=$(date +%s.%N)
	h1=$(host_busy)
	if [[ -n "$mon_pid" ]]; then
		c1=$(cpu_ns "$mon_pid")
		k1=$(cpu_ticks "$mon_pid")
		# Let the monitor print a snapshot that covers the end of the transfer.
		sleep 1.5
		stop_pid "$mon_pid"
	fi
	stop_pid "$srv_pid"

	PHASE=$phase ROUND=$round RUN=$run TAG=$tag CLK_TCK=$CLK_TCK \
		C0=$c0 C1=$c1 K0=$k0 K1=$k1 CSTART=$cstart H0=$h0 H1=$h1 T0=$t0 T1=$t1 \
		python3 - >>"$CSV" <<'EOF'
import json, os, re
e = os.environ
tag, phase = e["TAG"], e["PHASE"]
tck = float(e["CLK_TCK"])
end = json.load(open(tag + ".iperf.json"))["end"]
gbps = end["sum_received"]["bits_per_second"] / 1e9
sent = end["sum_sent"]["bytes"]
cpu = end["cpu_utilization_percent"]
mon_cpu = mon_ticks = startup = seen = ""
if phase.startswith("netmeter") or phase == "nethogs":
    mon_cpu = (int(e["C1"]) - int(e["C0"])) / 1e9
    mon_ticks = (int(e["K1"]) - int(e["K0"])) / tck
    startup = (int(e["C0"]) - int(e["CSTART"])) / 1e9
if phase.startswith("netmeter"):
    # IP bytes the engine attributed to the iperf3 processes: the client's tx
    # (the data stream, headers included) plus the server's rx of the same stream
    # would double count, so take the larger direction sum over iperf3 processes.
    last = None
    for line in open(tag + ".monitor.out"):
        if line.strip():
            last = line
    procs = json.loads(last).get("processes") or [] if last else []
    tx = sum(p["total"]["tx_bytes"] for p in procs if p["comm"] == "iperf3")
    rx = sum(p["total"]["rx_bytes"] for p in procs if p["comm"] == "iperf3")
    seen = max(tx, rx)
elif phase == "nethogs":
    # Trace mode with -v 2 prints totals in bytes: "prog/pid/uid<TAB>sent<TAB>recv".
    best = 0
    for line in open(tag + ".monitor.out"):
        f = line.rstrip("\n").split("\t")
        if len(f) == 3 and "iperf3" in f[0]:
            try:
                best = max(best, float(f[1]), float(f[2]))
            except ValueError:
                pass
    seen = int(best)
host = (int(e["H1"]) - int(e["H0"])) / tck
secs = float(e["T1"]) - float(e["T0"])
print(",".join(str(x) for x in (phase, e["ROUND"], e["RUN"], f"{gbps:.4f}", sent,
      f"{cpu['host_total']:.2f}", f"{cpu['remote_total']:.2f}",
      mon_cpu if mon_cpu == "" else f"{mon_cpu:.6f}",
      mon_ticks if mon_ticks == "" else f"{mon_ticks:.2f}",
      startup if startup == "" else f"{startup:.4f}",
      seen, f"{host:.3f}", f"{secs:.3f}")))
EOF
	log "$(tail -n 1 "$CSV")"
}

runs=$((ROUNDS * ${#PHASE_LIST[@]}))
log "netmeter overhead benchmark: ${#PHASE_LIST[@]} phases x $ROUNDS rounds x ${DURATION}s ($runs runs, ~$((runs * (DURATION + 4) / 60 + 1)) min); results in $OUT_DIR"
log "netmeter: $("$NETMETER" --version 2>/dev/null || echo "$NETMETER")"
run=0
for ((r = 1; r <= ROUNDS; r++)); do
	n=${#PHASE_LIST[@]}
	for ((k = 0; k < n; k++)); do
		# Rotate the order every round so no phase always runs first or last.
		phase=${PHASE_LIST[$(((k + r - 1) % n))]}
		run=$((run + 1))
		run_one "$phase" "$r" "$run"
		sleep 1
	done
done

# --- summary ---------------------------------------------------------------
CSV=$CSV SUMMARY=$SUMMARY IPERF_AFFINITY=$IPERF_AFFINITY DURATION=$DURATION ROUNDS=$ROUNDS PHASES="$PHASES" python3 - <<'EOF'
import csv, json, os, statistics, platform
e = os.environ
rows = list(csv.DictReader(open(e["CSV"])))
phases = e["PHASES"].split()
med = statistics.median
GB = 1e9

def f(r, k):
    return float(r[k]) if r[k] != "" else None

summ = {}
for ph in phases:
    rs = [r for r in rows if r["phase"] == ph]
    if not rs:
        continue
    gbps = [f(r, "gbps") for r in rs]
    d = {
        "runs": len(rs),
        "gbps": gbps,
        "gbps_median": med(gbps),
        "gbps_min": min(gbps),
        "gbps_max": max(gbps),
        # iperf3's own CPU (client+server, %-of-one-core x seconds) per GB sent:
        # in-kernel hook cost lands here, not in the monitor's process.
        "iperf_cpu_s_per_gb": med([(f(r, "iperf_sender_cpu_pct") + f(r, "iperf_receiver_cpu_pct")) / 100
                                   * f(r, "seconds") / (f(r, "sent_bytes") / GB) for r in rs]),
        "host_cpu_s_per_gb": med([f(r, "host_busy_s") / (f(r, "sent_bytes") / GB) for r in rs]),
    }
    if ph.startswith("netmeter") or ph == "nethogs":
        d["monitor_cpu_s"] = [f(r, "monitor_cpu_s") for r in rs]
        d["monitor_cpu_s_per_gb"] = med([f(r, "monitor_cpu_s") / (f(r, "sent_bytes") / GB) for r in rs])
        d["monitor_cpu_pct_of_core"] = med([100 * f(r, "monitor_cpu_s") / f(r, "seconds") for r in rs])
        d["monitor_startup_cpu_s"] = med([f(r, "monitor_startup_cpu_s") for r in rs])
        d["seen_over_sent"] = med([f(r, "monitor_seen_bytes") / f(r, "sent_bytes") for r in rs])
    summ[ph] = d

base = summ.get("baseline")
if base:
    for ph, d in summ.items():
        d["ratio_vs_baseline"] = d["gbps_median"] / base["gbps_median"]
        d["iperf_cpu_ratio_vs_baseline"] = d["iperf_cpu_s_per_gb"] / base["iperf_cpu_s_per_gb"]
        d["host_cpu_ratio_vs_baseline"] = d["host_cpu_s_per_gb"] / base["host_cpu_s_per_gb"]
    # Spread of the baseline repetitions themselves: (max-min)/median.
    allbase = [g for ph in ("baseline", "baseline2") if ph in summ for g in summ[ph]["gbps"]]
    noise = {"baseline_runs_spread": (max(allbase) - min(allbase)) / med(allbase),
             "baseline_runs_stdev_rel": statistics.stdev(allbase) / statistics.mean(allbase) if len(allbase) > 1 else 0}
    # Paired per-round ratios (same round, neighbouring runs) give a second view.
    for ph in summ:
        pr = []
        for r in rows:
            if r["phase"] != ph:
                continue
            b = [x for x in rows if x["phase"] == "baseline" and x["round"] == r["round"]]
            if b:
                pr.append(float(r["gbps"]) / float(b[0]["gbps"]))
        summ[ph]["paired_ratios"] = pr
        summ[ph]["paired_ratio_median"] = med(pr) if pr else None
else:
    noise = {}

out = {"duration_s": int(e["DURATION"]), "rounds": int(e["ROUNDS"]), "iperf_affinity": e["IPERF_AFFINITY"],
       "host": {"kernel": platform.release(), "cpus": os.cpu_count()},
       "noise": noise, "phases": summ}
json.dump(out, open(e["SUMMARY"], "w"), indent=1)

def fmt(x, spec):
    return "-" if x is None else format(x, spec)

print()
print(f"netmeter overhead: iperf3 -c 127.0.0.1 -t {e['DURATION']}{' -A ' + e['IPERF_AFFINITY'] if e['IPERF_AFFINITY'] else ''}, {e['ROUNDS']} rounds, medians")
hdr = f"{'phase':<10} {'Gbit/s':>7} {'min..max':>13} {'vs base':>8} {'paired':>7} {'iperf3 CPU s/GB':>16} {'vs base':>8} {'host CPU s/GB':>14} {'vs base':>8} {'monitor CPU s/GB':>17} {'monitor %core':>14} {'seen/sent':>10}"
print(hdr)
print("-" * len(hdr))
for ph, d in summ.items():
    print(f"{ph:<10} {d['gbps_median']:>7.2f} {d['gbps_min']:>6.2f}..{d['gbps_max']:<6.2f} "
          f"{fmt(d.get('ratio_vs_baseline'), '.3f'):>8} {fmt(d.get('paired_ratio_median'), '.3f'):>7} "
          f"{d['iperf_cpu_s_per_gb']:>16.4f} {fmt(d.get('iperf_cpu_ratio_vs_baseline'), '.3f'):>8} "
          f"{d['host_cpu_s_per_gb']:>14.4f} {fmt(d.get('host_cpu_ratio_vs_baseline'), '.3f'):>8} "
          f"{fmt(d.get('monitor_cpu_s_per_gb'), '.5f'):>17} {fmt(d.get('monitor_cpu_pct_of_core'), '.2f'):>14} "
          f"{fmt(d.get('seen_over_sent'), '.3f'):>10}")
if noise:
    print(f"\nbaseline noise: spread (max-min)/median of all {len([1 for r in rows if r['phase'].startswith('baseline')])} baseline runs = "
          f"{100 * noise['baseline_runs_spread']:.1f} %, relative stdev = {100 * noise['baseline_runs_stdev_rel']:.1f} %")
nm, nh = summ.get("netmeter"), summ.get("nethogs")
if nm and nh and nh["monitor_cpu_s_per_gb"]:
    print(f"netmeter process CPU per GB = {nm['monitor_cpu_s_per_gb'] / nh['monitor_cpu_s_per_gb']:.3f} x nethogs'")
print(f"\nruns: {e['CSV']}\nsummary: {e['SUMMARY']}")
EOF
