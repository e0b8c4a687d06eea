#!/bin/bash
# Entry point of the test host image: make /sys and cgroup v1 writable, then run dockerd and sshd.
#
# Environment:
#   AUTHORIZED_KEY         public key allowed to log in as root (or mount /run/testhost/authorized_keys)
#   DOCKERD_STORAGE_DRIVER force a storage driver; empty = dockerd picks (overlay2, else fuse-overlayfs, else vfs)
#   DOCKERD_EXTRA_ARGS     extra dockerd flags, e.g. "--insecure-registry reg:5000" (word-split)
set -u
log() { printf 'testhost: %s\n' "$*" >&2; }

# 1. /sys and the cgroup v1 hierarchies are mounted read-only in a non-privileged container;
#    nested containers then fail with "mkdir /sys/fs/cgroup/cpuset/docker: read-only file system".
mount -o remount,rw /sys || log "WARNING: cannot remount /sys read-write"
if grep -qE '^[^ ]+ /sys/fs/cgroup tmpfs [^ ]*\bro\b' /proc/self/mounts; then
  mount -o remount,rw /sys/fs/cgroup || log "WARNING: cannot remount /sys/fs/cgroup read-write"
fi
while read -r _ mnt fstype opts _; do
  case "$fstype" in cgroup|cgroup2) ;; *) continue ;; esac
  case ",$opts," in *,ro,*) ;; *) continue ;; esac
  mount -o remount,bind,rw "$mnt" || log "WARNING: cannot remount $mnt read-write"
done < /proc/self/mounts

# fuse-overlayfs (the storage fallback after overlay2) needs /dev/fuse; the device cgroup rule allows it.
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229 2>/dev/null || true

# 2. iptables: Debian defaults to the nft backend; fall back to legacy when the kernel lacks nf_tables.
if ! iptables -w -t nat -nL >/dev/null 2>&1; then
  log "iptables (nft) does not work here, switching to iptables-legacy"
  update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
  update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
fi

# 3. sshd: a fresh host key per container, root login with the given key only.
mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
[ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
if [ -n "${AUTHORIZED_KEY:-}" ]; then
  printf '%s\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
elif [ -s /run/testhost/authorized_keys ]; then
  cp /run/testhost/authorized_keys /root/.ssh/authorized_keys
else
  log "WARNING: no AUTHORIZED_KEY given: nobody can log in over ssh"
fi
[ -f /root/.ssh/authorized_keys ] && chmod 600 /root/.ssh/authorized_keys

# 4. dockerd. tcp://0.0.0.0:2375 is for the tests' own assertions (published on 127.0.0.1 only);
#    --tls=false says so explicitly, which also skips dockerd 26's 15 s "insecure binding" delay.
storage=()
[ -n "${DOCKERD_STORAGE_DRIVER:-}" ] && storage=(--storage-driver "$DOCKERD_STORAGE_DRIVER")
# shellcheck disable=SC2206
extra=(${DOCKERD_EXTRA_ARGS:-})
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
dockerd --host unix:///var/run/docker.sock --host tcp://0.0.0.0:2375 --tls=false \
  "${storage[@]}" "${extra[@]}" &
dockerd_pid=$!

/usr/sbin/sshd -D -e &
sshd_pid=$!

stop() {
  log "stopping"
  kill -TERM "$sshd_pid" "$dockerd_pid" 2>/dev/null
  wait "$dockerd_pid" 2>/dev/null
  exit 0
}
trap stop TERM INT

# Exit (and so stop the container) as soon as either daemon dies, so that failures show.
wait -n "$dockerd_pid" "$sshd_pid"
rc=$?
log "a daemon exited (status $rc); dockerd alive: $(kill -0 "$dockerd_pid" 2>/dev/null && echo yes || echo no)," \
    "sshd alive: $(kill -0 "$sshd_pid" 2>/dev/null && echo yes || echo no)"
kill -TERM "$sshd_pid" "$dockerd_pid" 2>/dev/null
exit "$rc"
