#!/bin/sh
# First step on a fresh marketplace VM: wait for cloud-init, stop apt's own background runs and wait for the
# dpkg/apt locks, so the first apt call of the build does not fail on a held lock. As Azure's HPC image recipe
# does it (Azure/azhpc-images packer/scripts/prerequisites.sh:27-53@8e9d055fb9e1); the apt-daily timers are
# stopped as well, only for this boot (the image keeps the base's settings).
set -u
cloud-init status --wait >/dev/null 2>&1 || true
systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
  unattended-upgrades.service 2>/dev/null || true
attempt=0
while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || fuser /var/lib/dpkg/lock >/dev/null 2>&1 ||
  fuser /var/lib/apt/lists/lock >/dev/null 2>&1 || fuser /var/cache/apt/archives/lock >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "apt is still locked after 10 minutes" >&2
    exit 1
  fi
  echo "apt is locked, waiting (attempt $attempt/60)"
  sleep 10
done
