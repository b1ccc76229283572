#!/usr/bin/env bash
# bench/history.sh — netmeter's history store against vnStat 2.x on the same data:
# one year of 5-minute traffic of 50 interfaces, month report and top-10 days query
# times, and file sizes, in one run.
#
# Steps:
#   1. bench/historybench gen: the same deterministic traffic (internal/history's
#      benchmark formula, per interface and 5-minute slot, 2025-01-01 – 2026-01-01 UTC)
#      into a netmeter history store through history.Store.Record (coarse Records for
#      the part whose fine rows the default retention has dropped, see gen.go) and
#      into a vnStat database made by `vnstatd --initdb` and filled with the rows
#      vnstatd's default retention keeps. Both are VACUUMed after their sizes are taken.
#   2. Gate: `netmeter report -m --json` / `--top --limit 10 --json` and
#      `vnstat --json m` / `--json t 10` must show the generator's sums for every
#      interface (12 months, top 10 days); the run stops otherwise.
#   3. In-process: netmeter's month report and top days on the store (as `netmeter
#      report` asks them), and vnStat's own SQL on its database through the same driver.
#   4. Processes: `netmeter report` and `vnstat` (month text/JSON, top 10 text/JSON)
#      and each tool's `version` as its start-up baseline, interleaved round by round
#      (order rotated), medians.
#
# Output: a table on stdout (also table.txt); gen.json, check.json, inproc.json,
# proc.json, runs.csv (every process run) and summary.json in $OUT_DIR.
#
# Environment:
#   ROUNDS=21        counted rounds of the process timings (2 warm-up rounds first)
#   QUICK=1          ROUNDS=7 and shorter in-process timings
#   IFACE=eth0       the interface the timed queries ask for (eth0 … eth49)
#   NETMETER=bin/netmeter   binary to measure (built with `make build` if missing)
#   VNSTAT, VNSTATD  the vnStat binaries (default: found in PATH or /usr/sbin)
#   OUT_DIR=/tmp/netmeter-history-bench.XXXX  where databases and results go
#
# Needs no root: Go, and vnStat 2.x installed (as root, apt-get installs it if missing).
# Takes well under a minute on a 2-core VM.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [[ "${QUICK:-0}" == 1 ]]; then
	ROUNDS=${ROUNDS:-7}
	MIN_TIME=150ms
	FRESH=5
else
	ROUNDS=${ROUNDS:-21}
	MIN_TIME=400ms
	FRESH=11
fi
IFACE=${IFACE:-eth0}
NETMETER=${NETMETER:-bin/netmeter}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/netmeter-history-bench.XXXXXX)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- dependencies ---------------------------------------------------------
find_bin() {
	local p
	if p=$(command -v "$1"); then
		echo "$p"
		return
	fi
	for d in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
		if [[ -x "$d/$1" ]]; then
			echo "$d/$1"
			return
		fi
	done
}
VNSTAT=${VNSTAT:-$(find_bin vnstat)}
VNSTATD=${VNSTATD:-$(find_bin vnstatd)}
if [[ -z "$VNSTAT" || -z "$VNSTATD" ]]; then
	[[ $(id -u) == 0 ]] || die "vnStat 2.x is not installed (apt-get install vnstat)"
	log "installing vnstat"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vnstat >/dev/null
	VNSTAT=$(find_bin vnstat)
	VNSTATD=$(find_bin vnstatd)
fi
vnver=$("$VNSTAT" --version)
[[ $vnver == "vnStat 2."* ]] || die "vnStat 2.x needed, $VNSTAT --version says: $vnver"
command -v go >/dev/null || die "go is needed to build bench/historybench"
if [[ ! -x "$NETMETER" ]]; then
	log "building $NETMETER"
	make build BIN="$NETMETER" >&2
fi
NETMETER=$(cd "$(dirname "$NETMETER")" && pwd)/$(basename "$NETMETER")
HB="$OUT_DIR/historybench"
go build -o "$HB" ./bench/historybench

# Every day, month and label in UTC, for both tools.
export TZ=UTC

# --- 1. the databases -----------------------------------------------------
NM_DIR="$OUT_DIR/netmeter"
VN_DIR="$OUT_DIR/vnstat"
[[ ! -e "$NM_DIR/history.db" && ! -e "$VN_DIR/vnstat.db" ]] || die "$OUT_DIR already holds databases: use a new OUT_DIR"
mkdir -p "$NM_DIR" "$VN_DIR"
# vnStat's defaults, spelled out so that /etc/vnstat.conf cannot change them.
VN_CONF="$VN_DIR/vnstat.conf"
cat >"$VN_CONF" <<EOF
DatabaseDir "$VN_DIR"
UseUTC 1
MonthRotate 1
5MinuteHours 48
HourlyDays 4
DailyDays 62
MonthlyMonths 25
YearlyYears -1
TopDayEntries 20
EOF
# An empty config file: /etc/netmeter/netmeter.yaml is not read.
NM_CONF="$OUT_DIR/netmeter.yaml"
: >"$NM_CONF"

log "creating vnstat.db with vnstatd --initdb"
"$VNSTATD" --initdb --config "$VN_CONF" >&2
log "generating one year of 5-minute data for 50 interfaces"
"$HB" gen -netmeter "$NM_DIR" -vnstat "$VN_DIR" -out "$OUT_DIR"

nm=("$NETMETER" --config "$NM_CONF" --data-dir "$NM_DIR" --timezone UTC)
vn=("$VNSTAT" --config "$VN_CONF" --dbdir "$VN_DIR")

# --- 2. correctness gate --------------------------------------------------
log "gate: both tools' JSON against the generator's sums"
mkdir -p "$OUT_DIR/gate"
"${nm[@]}" report -m --json >"$OUT_DIR/gate/netmeter-months.json"
"${nm[@]}" report --top --limit 10 --json >"$OUT_DIR/gate/netmeter-top.json"
"${vn[@]}" --json m >"$OUT_DIR/gate/vnstat-months.json"
"${vn[@]}" --json t 10 >"$OUT_DIR/gate/vnstat-top.json"
"$HB" check -truth "$OUT_DIR/truth.json" -out "$OUT_DIR/check.json" \
	-netmeter-months "$OUT_DIR/gate/netmeter-months.json" -netmeter-top "$OUT_DIR/gate/netmeter-top.json" \
	-vnstat-months "$OUT_DIR/gate/vnstat-months.json" -vnstat-top "$OUT_DIR/gate/vnstat-top.json" ||
	die "the tools disagree with the generated data: no timings (see $OUT_DIR/gate)"

# --- 3. in-process --------------------------------------------------------
log "in-process timings ($IFACE)"
"$HB" inproc -netmeter "$NM_DIR" -vnstat "$VN_DIR" -i "$IFACE" -min-time "$MIN_TIME" -fresh "$FRESH" -out "$OUT_DIR/inproc.json"

# --- 4. processes ---------------------------------------------------------
log "process timings: $ROUNDS rounds (+2 warm-up), interleaved"
CMDS="$OUT_DIR/commands.tsv"
row() { (IFS=$'\t' && echo "$*"); }
{
	row nm-version "${nm[@]}" version
	row vn-version "${vn[@]}" --version
	row go-noop "$HB" noop
	row nm-month-text "${nm[@]}" report -m -i "$IFACE"
	row vn-month-text "${vn[@]}" -i "$IFACE" -m
	row nm-month-json "${nm[@]}" report -m -i "$IFACE" --json
	row vn-month-json "${vn[@]}" -i "$IFACE" --json m
	row nm-top-text "${nm[@]}" report --top --limit 10 -i "$IFACE"
	row vn-top-text "${vn[@]}" -i "$IFACE" -t 10
	row nm-top-json "${nm[@]}" report --top --limit 10 -i "$IFACE" --json
	row vn-top-json "${vn[@]}" -i "$IFACE" --json t 10
} >"$CMDS"
"$HB" proc -cmds "$CMDS" -rounds "$ROUNDS" -warmup 2 -csv "$OUT_DIR/runs.csv" -out "$OUT_DIR/proc.json"

# --- summary --------------------------------------------------------------
"$HB" summary -dir "$OUT_DIR" \
	-meta "netmeter=$("${nm[@]}" version)" -meta "vnstat=$vnver" -meta "go=$(go version)" \
	-meta "kernel=$(uname -r)" -meta "cpus=$(nproc)" \
	-meta "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
	-meta "date=$(date -u +%FT%TZ)" -meta "iface=$IFACE" | tee "$OUT_DIR/table.txt"
log "results in $OUT_DIR"
