#!/bin/bash
# Kernel-side cost of each engine program (ns per call, from kernel.bpf_stats_enabled)
# during a 5 s loopback iperf3. Usage: bash bench/hookcost.sh [path/to/netmeter]
# Needs root, iperf3, bpftool; turns bpf_stats back off at the end.
set -e
bin=${1:-bin/netmeter}
sysctl -qw kernel.bpf_stats_enabled=1
$bin top --json --watch 1 >/dev/null 2>&1 & nm=$!
sleep 1.5
iperf3 -s -1 -p 5411 >/dev/null 2>&1 & srv=$!
sleep 0.3
iperf3 -c 127.0.0.1 -p 5411 -t 5 -J > /tmp/hc.json
wait $srv || true
bpftool prog show -j > /tmp/hc_progs.json
kill $nm; wait $nm 2>/dev/null || true
sysctl -qw kernel.bpf_stats_enabled=0
python3 - <<'PY'
import json
progs=json.load(open('/tmp/hc_progs.json'))
ip=json.load(open('/tmp/hc.json'))
print("iperf3 Gbit/s %.2f" % (ip['end']['sum_received']['bits_per_second']/1e9))
tot=0
for p in progs:
    n=p.get('name','')
    if n in ('skb_egress','skb_ingress','send_length','recv_length','set_state','rcv_space','tcp_destroy','sock_create','sock_release','dump_sockets','tcp_ops','retransmit','send_reset','receive_reset','drop','health_destroy','dump_health') and p.get('run_cnt',0)>0:
        print("%-14s %9d calls %7.1f ns/call %6.3f s" % (n, p['run_cnt'], p['run_time_ns']/p['run_cnt'], p['run_time_ns']/1e9))
        tot+=p['run_time_ns']
print("total %.3f s" % (tot/1e9))
PY
