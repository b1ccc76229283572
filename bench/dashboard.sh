#!/usr/bin/env bash
# Page-load budget of the web dashboard: runs internal/web's browser test
# (a real `netmeter serve` with a year of seeded history, Chromium through
# playwright-core) ROUNDS times and reports the median time from navigation
# to the overview's first interface value and to the history chart of the
# seeded year, next to the first contentful paint of the same loads (the
# static shell: the baseline). Budget: first render under 1 s.
#   ROUNDS=5 bash bench/dashboard.sh      (root; run on an otherwise idle host)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for i in $(seq "$rounds"); do
	go test -count=1 -run Browser -v ./internal/web/ >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
first=$(grep -o 'first interface card with a value [0-9]* ms' "$log" | awk '{print $7}' | median)
fcp=$(grep -o 'first contentful paint [0-9]* ms' "$log" | awk '{print $4}' | median)
day=$(grep -o 'seeded year drawn [0-9]* ms' "$log" | awk '{print $4}' | median)
hour=$(grep -o '([0-9]* points) in [0-9]* ms' "$log" | awk '{print $4}' | median)
echo "rounds: $rounds"
echo "overview first value: median ${first} ms (first contentful paint ${fcp} ms; ratio $(awk -v a="$first" -v b="$fcp" 'BEGIN{printf "%.2f", a/b}'))"
echo "history, a year per day: ${day} ms; per hour (8760 points): ${hour} ms"
awk -v a="$first" 'BEGIN{ if (a >= 1000) { print "over the 1 s budget"; exit 1 } else print "within the 1 s budget" }'
