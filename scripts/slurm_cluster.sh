#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm.py (and for trying the README's
# SLURM sweep by hand). Everything it writes lives under DIR; nothing in /etc is changed.
#
#   scripts/slurm_cluster.sh install        apt-get slurm-wlm and munge when missing (root or sudo)
#   scripts/slurm_cluster.sh start DIR      munged, slurmctld, slurmd; waits until the node is idle
#   scripts/slurm_cluster.sh stop DIR       stops the three daemons started in DIR
#
# After `start`, export SLURM_CONF=DIR/slurm.conf: sinfo, sbatch, squeue and scancel (and so
# submitit) then talk to this cluster. Its one partition is `cpu`, holding this machine's cores
# and memory. Daemons run as root without cgroups (proctrack/linuxproc, task/none), so it works
# in a container.
set -euo pipefail

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_conf() {
  local dir=$1 host cpus mem_mb ctl_port d_port
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))  # leave the OS 10%
  ctl_port=$(free_port); d_port=$(free_port)
  cat >"$dir/slurm.conf" <<EOF
# written by scripts/slurm_cluster.sh: a one-node cluster on $host
ClusterName=convscope
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
KillWait=2
InactiveLimit=0
MinJobAge=300
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
PlugStackConfig=$dir/plugstack.conf
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$dir/plugstack.conf"
}

start() {
  local dir=$1
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  dir=$(cd "$dir" && pwd)
  write_conf "$dir"
  export SLURM_CONF=$dir/slurm.conf
  # munged as root (--force) on a private socket: no system munged is needed or touched
  munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
  slurmctld -i -f "$SLURM_CONF"   # -i: ignore any state a previous cluster left
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 120); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
      echo "SLURM_CONF=$SLURM_CONF"
      return
    fi
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "error: the node did not become idle in 60 s; logs in $dir" >&2
  sinfo -N -l >&2 || true
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  return 1
}

stop() {
  local dir=$1 pidfile pid
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  install) install ;;
  start) [ $# -eq 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }; install; start "$2" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
