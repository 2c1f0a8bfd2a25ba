# Sourced by scripts/setup.sh: `wait_for_apt_lock` waits until no other process (apt,
# dpkg, unattended-upgrades on a freshly booted machine, ...) holds apt's or dpkg's lock
# files, saying so, for at most SYND_APT_WAIT seconds (default 600); then it fails with a
# message that names the process. apt and dpkg lock with fcntl and keep the lock file open
# while they hold it, so a process that has a lock file open is taken as its holder (found
# through /proc, like fuser(1), without needing psmisc).
#
# SYND_APT_LOCKS (space-separated paths) replaces the lock files checked, for tests.
# `apt_lock_left` is the number of seconds of the limit left after the last wait, for
# apt-get's own `-o DPkg::Lock::Timeout=` (apt >= 1.9.11), which covers a process that
# takes the lock between the wait and apt-get.

SYND_APT_WAIT=${SYND_APT_WAIT:-600}
SYND_APT_LOCKS=${SYND_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock}
apt_lock_left=$SYND_APT_WAIT

# The first "PID (NAME)" that has one of the lock files open, or nothing.
apt_lock_holder() {
  local lock fd pid
  for lock in $SYND_APT_LOCKS; do
    [ -e "$lock" ] || continue
    lock=$(readlink -f "$lock")
    fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$lock" -print -quit 2>/dev/null || true)
    if [ -n "$fd" ]; then
      pid=${fd#/proc/}
      pid=${pid%%/*}
      echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo gone)) holds $lock"
      return
    fi
  done
}

_apt_lock_ms() {  # milliseconds since the epoch (whole seconds would let a 3 s limit end after 2)
  date +%s%3N
}

wait_for_apt_lock() {
  local holder began now waited said=-1
  began=$(_apt_lock_ms)
  while holder=$(apt_lock_holder) && [ -n "$holder" ]; do
    now=$(_apt_lock_ms)
    waited=$(((now - began) / 1000))
    apt_lock_left=$((SYND_APT_WAIT - waited))
    if ((now - began >= SYND_APT_WAIT * 1000)); then
      echo "setup: gave up after ${SYND_APT_WAIT} s: process $holder;" \
        "let it finish (or stop it), then run make again" >&2
      return 1
    fi
    if ((said < 0 || waited - said >= 60)); then
      if ((said < 0)); then
        echo "setup: waiting for another package manager to finish: process $holder" \
          "(up to ${SYND_APT_WAIT} s; SYND_APT_WAIT=SECONDS changes the limit)" >&2
      else
        echo "setup: still waiting for process $holder (${waited} s of ${SYND_APT_WAIT} s)" >&2
      fi
      said=$waited
    fi
    sleep 1
  done
  now=$(_apt_lock_ms)
  apt_lock_left=$((SYND_APT_WAIT - (now - began) / 1000))
  ((apt_lock_left > 0)) || apt_lock_left=1
  ((said < 0)) || echo "setup: the package manager is free after $(((now - began) / 1000)) s" >&2
  return 0
}
