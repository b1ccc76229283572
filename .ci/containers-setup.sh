#!/usr/bin/env bash
# Installs what internal/containertest needs to run real containers: Debian's
# Docker (dockerd, docker-proxy, containerd, the 20.10 CLI at /usr/bin/docker),
# Podman with runc (crun cannot run in this hybrid-cgroup VM), netavark,
# slirp4netns, uidmap, the static busybox the test image is built from, and
# iptables. Idempotent: it installs only what is missing and starts nothing —
# the tests start private daemons themselves and stop them by pid.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# needrestart (pulled in by docker.io) must not prompt or restart services.
export NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1

pkgs=(docker.io containerd podman runc netavark slirp4netns uidmap busybox-static iptables)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "containers-setup: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for b in /usr/sbin/dockerd /usr/bin/docker /usr/sbin/docker-proxy /usr/bin/containerd \
         /usr/bin/podman /usr/sbin/runc /usr/bin/busybox /usr/sbin/iptables; do
  [ -x "$b" ] || { echo "containers-setup: $b missing after install" >&2; exit 1; }
done
# The image must be built from a static busybox: it runs in an empty rootfs.
if ! file -L /usr/bin/busybox 2>/dev/null | grep -q 'statically linked'; then
  if ! ldd /usr/bin/busybox 2>&1 | grep -q 'not a dynamic executable'; then
    echo "containers-setup: /usr/bin/busybox is not static (install busybox-static)" >&2; exit 1
  fi
fi
echo "containers-setup: ok ($(/usr/bin/docker --version); $(/usr/bin/podman --version); $(/usr/sbin/runc --version | head -1))"
