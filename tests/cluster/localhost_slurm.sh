#!/usr/bin/env bash
# A one-node Slurm on localhost for tests/test_slurm.py (root, Debian/Ubuntu):
#   localhost_slurm.sh start STATE_DIR   install slurm-wlm and munge when missing, write
#                                        /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   localhost_slurm.sh stop STATE_DIR    stop the daemons this script started (by their pid files)
# No cgroups (proctrack/linuxproc, task/none), no accounting (so Snakemake's Slurm plugin must
# query squeue; MinJobAge keeps finished jobs visible to squeue for 10 minutes). The config has
# to be at /etc/slurm/slurm.conf: a job step clears SLURM_* variables, SLURM_CONF included.
# Exit 3 means "cannot run here" (not root, no apt, a Slurm that is not ours): the test skips.
set -euo pipefail
action=${1:?start or stop}
state=${2:?state directory}
conf=/etc/slurm/slurm.conf
marker="# written by feederflex tests/cluster/localhost_slurm.sh"

stop_pidfile() {  # stop the process named in a pid file, wait up to 20 s for it to go
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}

if [ "$action" = stop ]; then
  stop_pidfile "$state/slurmd.pid"
  stop_pidfile "$state/slurmctld.pid"
  stop_pidfile "$state/munged.pid"
  if [ -f "$conf" ] && grep -qF "$marker" "$conf"; then rm -f "$conf"; fi
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "not root" >&2; exit 3; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { echo "no apt-get to install slurm-wlm" >&2; exit 3; }
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) \
    || { echo "apt-get install slurm-wlm munge failed" >&2; exit 3; }
fi
if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  echo "$conf exists and is not ours: not touching a real Slurm installation" >&2; exit 3
fi
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  echo "a slurmctld or slurmd is already running: not starting a second one" >&2; exit 3
fi

mkdir -p "$state/ctld" "$state/spool" /etc/slurm
host=$(hostname -s)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)   # leave 10 % to the system
cpus=$(nproc)
cat > "$conf" <<CONF
$marker; removed again by "stop"
ClusterName=feederflex-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munged: its own key (Debian's package creates one), socket in /run/munge, run as user munge.
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null;
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
if [ ! -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid
  setpriv --reuid munge --regid munge --init-groups /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 1 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
  cp /run/munge/munged.pid "$state/munged.pid"
fi

/usr/sbin/slurmctld -i
/usr/sbin/slurmd
for _ in $(seq 1 60); do   # up to 30 s for the node to come up idle
  if sinfo -h -N -o %T 2>/dev/null | grep -q idle; then exit 0; fi
  sleep 0.5
done
echo "slurm did not come up; logs in $state" >&2
tail -20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
exit 1
