#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the launcher tests and CI: munged, slurmctld and
# slurmd with a configuration that needs no cgroups (processes tracked by their parent pid, no task
# plugin), this machine's CPUs and memory, one partition. Run as root (slurmd runs jobs as their
# owner). Its files live in <repository>/.slurm (or SSFER_SLURM_DIR).
#
#   test/slurm/cluster.sh start   start the daemons unless they answer already; prints the SLURM_CONF to export
#   test/slurm/cluster.sh stop    stop the daemons this script started
#   test/slurm/cluster.sh conf    print the SLURM_CONF path
#
# Exit status: 0 ready, 3 SLURM is not installed (apt-get install slurm-wlm munge), 1 another failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${SSFER_SLURM_DIR:-$here/../../.slurm}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
conf="$dir/slurm.conf"

need() { command -v "$1" >/dev/null 2>&1 || { echo "slurm: $1 is not installed (apt-get install slurm-wlm munge)" >&2; exit 3; }; }

start() {
  need slurmctld
  need slurmd
  need sbatch
  need munged
  # munge: the key the package made, a socket of our own so a system munged is left alone.
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  if [ ! -f /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --keyfile=/etc/munge/munge.key) || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chmod 400 /etc/munge/munge.key
  fi
  export SLURM_CONF="$conf"
  if [ -f "$conf" ] && timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "$conf"
    return 0
  fi
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  # slurmd refuses a node that claims more memory than it has: leave a margin.
  mem="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
  local user
  user="$(id -un)"
  cat >"$conf" <<EOF
ClusterName=ssfer
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${SSFER_SLURMCTLD_PORT:-6817}
SlurmdPort=${SSFER_SLURMD_PORT:-6818}
KillWait=10
MinJobAge=3600
MaxArraySize=10001
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  stop_quiet
  munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
  # The jobs run at the lowest CPU priority (nice 19): a test cluster shares its machine.
  nice -n "${SSFER_SLURM_NICE:-19}" slurmctld -f "$conf"
  nice -n "${SSFER_SLURM_NICE:-19}" slurmd -f "$conf" -N "$host"
  for _ in $(seq 1 60); do
    if timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
      echo "$conf"
      return 0
    fi
    sleep 1
  done
  echo "slurm: the node did not come up; see $dir/log" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
}

stop_quiet() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  sleep 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop_quiet ;;
  conf) echo "$conf" ;;
  *) echo "usage: $0 start|stop|conf" >&2; exit 2 ;;
esac
