#!/usr/bin/env bash
# Makes sure a Docker Engine runs on this machine, for the tests and the demo:
# installs Debian's docker.io (and debootstrap, for the offline images) when
# missing and starts dockerd when nothing answers. Safe to run again.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-engine: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  echo "setup-engine: Docker Engine $(docker version -f '{{.Server.Version}}') is running"
  exit 0
fi

# Machines of this kind boot without systemd: start dockerd directly.
log=/var/log/dind-executor-dockerd.log
echo "setup-engine: starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "setup-engine: Docker Engine $(docker version -f '{{.Server.Version}}') is running"
    exit 0
  fi
  sleep 0.5
done
echo "setup-engine: dockerd did not answer within 30 s; last log lines:" >&2
tail -n 20 "$log" >&2
exit 1
