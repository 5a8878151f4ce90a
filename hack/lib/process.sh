# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Background processes that hack/control-plane.sh and hack/containerd.sh start
# and stop by PID, and the state dir they run in. Source it after
# hack/lib/common.sh; it defines variables and functions and runs nothing else.
# Its functions use what the sourcing script defines: STATE and LOGS (its
# state dir and the logs in it, one NAME.log per process), START_TIMEOUT and
# STOP_TIMEOUT (seconds to wait for a start, between TERM and KILL),
# component_alive NAME (the process NAME runs) and stop_all (stops everything
# `up` started; fine to call when nothing runs).

### Processes ################################################################

# process_alive PID [TEXT]: PID runs, is not a zombie, and its command line
# (the arguments joined by spaces, one after the last) contains TEXT. TEXT
# naming a file of ours guards against PIDs recycled after a reboot or a crash.
process_alive() {
  local pid="$1" text="${2:-}" stat cmdline
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/${pid}/stat" 2>/dev/null)" || return 1
  # The state letter follows the parenthesized command name.
  [[ "${stat##*) }" != Z* ]] || return 1
  [[ -n "${text}" ]] || return 0
  # Braces: a process gone since the line above makes the redirection fail.
  cmdline="$({ tr '\0' ' ' <"/proc/${pid}/cmdline"; } 2>/dev/null)" || return 1
  [[ "${cmdline}" == *"${text}"* ]]
}

# start_detached NAME PIDFILE LOGFILE COMMAND... runs COMMAND in its own
# session (so a Ctrl-C or a process-group kill aimed at the caller does not
# reach it), with output appended to LOGFILE. The child records its own PID in
# PIDFILE before exec'ing, which stays right whether or not setsid has to
# fork. It must not inherit fd 8, the callers' state dir lock, or the lock
# would outlive the command. Dies when no PID is recorded within 10 s.
start_detached() {
  local name="$1" pidfile="$2" logfile="$3" i
  shift 3
  rm -f "${pidfile}"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
    "${pidfile}" "$@" </dev/null >>"${logfile}" 2>&1 8>&- &
  for ((i = 0; i < 100; i++)); do
    [[ -s "${pidfile}" ]] && return 0
    sleep 0.1
  done
  die "${name} did not start"
}

# wait_until DESC NAME CMD... retries CMD (its output dropped) every
# WAIT_INTERVAL seconds until it succeeds, failing early (with the tail of
# LOGS/NAME.log) when component_alive NAME fails, or after START_TIMEOUT.
WAIT_INTERVAL=0.5
wait_until() {
  local desc="$1" name="$2" deadline=$((SECONDS + START_TIMEOUT))
  shift 2
  log "waiting for ${desc} ..."
  until "$@" >/dev/null 2>&1; do
    if ! component_alive "${name}"; then
      tail -n 30 "${LOGS}/${name}.log" >&2 || true
      die "${name} exited while waiting for ${desc}; log: ${LOGS}/${name}.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "${LOGS}/${name}.log" >&2 || true
      die "timed out after ${START_TIMEOUT} s waiting for ${desc}; log: ${LOGS}/${name}.log"
    fi
    sleep "${WAIT_INTERVAL}"
  done
}

# wait_gone TIMEOUT TEXT PID...: succeeds once none of the PIDs is
# process_alive with TEXT; fails after TIMEOUT seconds, with the PIDs still
# there in PIDS_LEFT.
PIDS_LEFT=()
wait_gone() {
  local timeout="$1" text="$2" deadline pid
  shift 2
  deadline=$((SECONDS + timeout))
  while :; do
    PIDS_LEFT=()
    for pid in "$@"; do
      process_alive "${pid}" "${text}" && PIDS_LEFT+=("${pid}")
    done
    [[ ${#PIDS_LEFT[@]} -gt 0 ]] || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# wait_or_kill DESC TEXT PID...: the PIDs were sent TERM (or another signal);
# waits up to STOP_TIMEOUT seconds for them to end (wait_gone TEXT), then
# sends KILL to those left and dies when one of them survives it by 5 s.
wait_or_kill() {
  local desc="$1" text="$2"
  shift 2
  wait_gone "${STOP_TIMEOUT}" "${text}" "$@" && return 0
  log "${desc} still running after ${STOP_TIMEOUT} s, sending KILL: ${PIDS_LEFT[*]}"
  kill -KILL "${PIDS_LEFT[@]}" 2>/dev/null || true
  wait_gone 5 "${text}" "$@" || die "${desc} survived KILL: ${PIDS_LEFT[*]}"
}

### The state dir ############################################################

# unmount_all: every mount point under the state dir (a kubelet's volumes and
# bind mounts, containerd's snapshots, shm and network namespaces), deepest
# first; dies when some are left after five rounds.
unmount_all() {
  local mounts=() m i
  for ((i = 0; i < 5; i++)); do
    mapfile -t mounts < <(awk -v pre="${STATE}/" 'index($5, pre) == 1 { print $5 }' /proc/self/mountinfo | sort -r -u)
    [[ ${#mounts[@]} -gt 0 ]] || return 0
    for m in "${mounts[@]}"; do
      # mountinfo escapes blanks as octal (\040); %b decodes them.
      m="$(printf '%b' "${m}")"
      umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true
    done
  done
  die "mounts left under ${STATE}: ${mounts[*]}"
}

# remove_stale_state: before `up` starts anew, whatever an earlier run left.
remove_stale_state() {
  [[ -e "${STATE}" ]] || return 0
  log "removing stale state in ${STATE}"
  stop_all
  rm -rf -- "${STATE}"
}

# trap_failed_up: set by `up` before it starts anything. A failed start stops
# what it started and keeps the state dir, logs included, for inspection; the
# next `up` or `down` clears it. `up` sets UP_DONE=1 once everything runs.
UP_DONE=0
trap_failed_up() {
  trap 'on_up_exit' EXIT
  # Without traps of their own, INT and TERM would end bash without running
  # the EXIT trap.
  trap 'exit 130' INT TERM
}
on_up_exit() {
  [[ "${UP_DONE}" == 0 ]] || return 0
  log "start failed; stopping what was started (logs: ${LOGS})"
  stop_all || true
}

# parse_down_args [--keep-logs]: the arguments of `down`. KEEP_LOGS=1 (also
# with DRA_SRIOV_KEEP_LOGS=1) keeps the logs when the state dir goes.
parse_down_args() {
  KEEP_LOGS="${DRA_SRIOV_KEEP_LOGS:-0}"
  case "${1:-}" in
    "") ;;
    --keep-logs) KEEP_LOGS=1 ;;
    *) die "unknown argument to down: $1" ;;
  esac
}

# remove_state: after stop_all, the state dir goes, or all of it but LOGS
# when KEEP_LOGS=1.
remove_state() {
  if [[ "${KEEP_LOGS}" == 1 && -d "${LOGS}" ]]; then
    find "${STATE}" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf -- {} +
    log "stopped; logs kept in ${LOGS}"
  else
    rm -rf -- "${STATE}"
    log "stopped; removed ${STATE}"
  fi
}
