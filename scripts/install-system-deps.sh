#!/usr/bin/env bash
# System packages the test suite and benchmarks use (Debian). Idempotent; skipped when present.
# Benchmarks and reference checks call /usr/bin/python3 (Debian's, which sees python3-torch), not a pyenv python.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || need+=(python3-torch python3-numpy libopenblas0-pthread)
[ -x /usr/bin/chromium ] || need+=(chromium)
# The README's tour asks the server with curl; test/tour.test.ts runs it as written.
command -v curl >/dev/null || need+=(curl)
# nanoseek mail's tests: a real IMAP server (started by the tests with their own configuration) and
# `ip`/`unshare` for the empty-network-namespace test.
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-system-deps: need root to install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq
  # RUNLEVEL=1: the package's own dovecot service is not started; the tests start theirs.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
