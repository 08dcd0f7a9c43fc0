#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests of the SLURM launcher, preemption and
# DDP under SLURM: a real controller (slurmctld), node daemon (slurmd) and accounting daemon
# (slurmdbd, on its own MariaDB), authenticated by munge, as on a real cluster.
#
#   tests/cluster/slurm.sh start    # installs what is missing (Debian packages, root), starts
#                                   # it all, waits until the node is idle; idempotent
#   tests/cluster/slurm.sh status   # sinfo, or exit 1 when it is not up
#   tests/cluster/slurm.sh stop     # stops the daemons it started
#   export SLURM_CONF=$(tests/cluster/slurm.sh conf)   # then sbatch, sinfo, sacct ... talk to it
#
# Everything it writes lies in $SLURM_TEST_DIR (default /tmp/resnet-repro-slurm): the configs,
# state, logs and the database; nothing under /etc but the munge key the package creates. The
# node has this machine's CPUs and memory as `slurmd -C` reports them, in one partition
# `debug`. Daemons run as root. KillWait (the grace between SIGTERM and SIGKILL at a time limit
# or scancel) is 30 s, SLURM's default.
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/resnet-repro-slurm}
CONF=$STATE/slurm.conf
DBD_CONF=$STATE/slurmdbd.conf
DB_PORT=${SLURM_TEST_DB_PORT:-3307}
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
export SLURM_CONF=$CONF

fail() {
    echo "slurm.sh: $1" >&2
    [[ -n ${2:-} && -f $2 ]] && { echo "--- last lines of $2:" >&2; tail -n 20 "$2" >&2; }
    exit 1
}

wait_for() {  # wait_for <what> <log> <command...>: up to 60 s
    local what=$1 log=$2
    shift 2
    for _ in $(seq 120); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    fail "$what did not come up within 60 s" "$log"
}

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || fail "needs root to install ${missing[*]} (or install them first)"
    echo "installing ${missing[*]}"
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed"
}

write_configs() {
    mkdir -p "$STATE"/{ctld,spool,db}
    local node
    node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=...
    cat >"$CONF" <<EOF
# written by tests/cluster/slurm.sh: a one-node test cluster
ClusterName=resnet-repro
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
KillWait=30
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DBD_CONF" <<EOF
# written by tests/cluster/slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DBD_CONF"
}

running() {  # running <pidfile>
    [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_munge() {
    [[ -f /etc/munge/munge.key ]] || mungekey --create >/dev/null
    mkdir -p /run/munge && chown munge:munge /run/munge
    if ! pgrep -x munged >/dev/null; then
        runuser -u munge -- /usr/sbin/munged || fail "munged did not start" /var/log/munge/munged.log
    fi
    wait_for munged /var/log/munge/munged.log sh -c "munge -n | unmunge"
}

start_database() {
    if [[ ! -d $STATE/db/mysql ]]; then
        mariadb-install-db --user=root --datadir="$STATE/db" --auth-root-authentication-method=normal \
            >"$STATE/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed" "$STATE/mariadb-install.log"
    fi
    if ! running "$STATE/mariadb.pid"; then
        mariadbd --user=root --datadir="$STATE/db" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --socket="$STATE/mariadb.sock" --pid-file="$STATE/mariadb.pid" \
            --log-error="$STATE/mariadb.log" &
    fi
    wait_for MariaDB "$STATE/mariadb.log" mariadb-admin --socket="$STATE/mariadb.sock" ping
}

start_daemon() {  # start_daemon <name> <pidfile> <log> <command...>
    local name=$1 pidfile=$2 log=$3
    shift 3
    running "$pidfile" || "$@" || fail "$name did not start" "$log"
    wait_for "$name" "$log" running "$pidfile"
}

node_idle() {
    sinfo --noheader --states=idle --format=%N | grep -q .
}

start() {
    install_packages
    write_configs
    start_munge
    start_database
    start_daemon slurmdbd "$STATE/slurmdbd.pid" "$STATE/slurmdbd.log" slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
    wait_for "slurmdbd's port" "$STATE/slurmdbd.log" sacctmgr --noheader list cluster
    if ! sacctmgr --noheader --parsable2 list cluster format=cluster | grep -qx resnet-repro; then
        sacctmgr --immediate add cluster resnet-repro >/dev/null
    fi
    start_daemon slurmctld "$STATE/slurmctld.pid" "$STATE/slurmctld.log" slurmctld -f "$CONF"
    start_daemon slurmd "$STATE/slurmd.pid" "$STATE/slurmd.log" slurmd -f "$CONF"
    wait_for "the node (idle in sinfo)" "$STATE/slurmctld.log" node_idle
    sinfo
}

stop_pidfile() {  # stop_pidfile <pidfile>: TERM, then wait up to 30 s
    running "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    for daemon in slurmd slurmctld slurmdbd mariadb; do
        stop_pidfile "$STATE/$daemon.pid"
    done
    echo "stopped (munged left running; state kept in $STATE)"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) sinfo || exit 1 ;;
    conf) echo "$CONF" ;;
    *) echo "usage: $0 start|stop|status|conf" >&2; exit 2 ;;
esac
