"""Real remote Docker hosts for integration tests: dockerd 26 + sshd in a container, and a 3-node swarm.

Usage::

    from hosts import RemoteHost, SwarmCluster          # tests/ is on sys.path (tests/conftest.py)
    from hosts.fixtures import remote_host, remote_host_factory, swarm_cluster, testweb_image

    with RemoteHost() as host:
        subprocess.run(["ssh", "-F", str(host.ssh_config), host.alias, "docker", "version"], check=True)
        host.load_image("debian:trixie-slim")           # local image -> inner engine (skipped if present)
        sock = host.forward_docker_socket()             # ssh -F cfg -N -L sock:/var/run/docker.sock alias
        subprocess.run(["docker", "-H", f"unix://{sock}", "ps"], check=True)
        subprocess.run(["docker", "ps"], env=host.cli_env(), check=True)   # DOCKER_HOST=ssh://<alias>
        host.client.containers.list()                   # SDK client on the inner engine (assertions only)

Files: `Dockerfile` + `entrypoint.sh` + `sshd_config` (image `deployer-testhost:<hash>`), `registry.Dockerfile`
+ `registry-config.yml` (`deployer-testregistry:<hash>`), `web.Dockerfile` + `web_server.py`
(`deployer-testweb:<hash>`: python3 answering GET / with its hostname). Each tag is a hash of exactly those
files, so each image is built once per content; the Python files are not part of any build context.
Everything created carries the label `deployer.testhost` (+ owner `<hostname>:<pid>`); `remove_leftovers()`
removes what a dead test process left behind.

Measured on this machine (outer dockerd 20.10.24, cgroup v1, kernel 6.18; inner Debian docker.io 26.1.5):

- Image builds from scratch (`--no-cache`): test host 15 s, registry 5 s, web image 8 s; 0.0 s when the tag
  exists. With a warm layer cache an edit to entrypoint.sh rebuilds in under 1 s.
- `RemoteHost.start()`: 2.7-3.2 s to working `docker info` over ssh (container run 0.2-0.5 s, dockerd API
  ready 2.2-2.4 s of which 1 s is dockerd's own sleep for a tcp listener, ssh + `docker info` 0.25-0.4 s).
  `remove()`: about 0.7 s.
- `ssh -F cfg alias docker info`: 0.19 s. `docker` CLI via `cli_env()` (ssh://): 0.2 s.
- `load_image`: debian:trixie-slim (113 MB) 3.4-3.6 s; debian slim + the 250 MB web image 5.3 s; a second
  load of the same image ID 0.0 s (skipped).
- `docker compose up -d --wait` of one service through the forwarded socket: 0.9 s.
- `SwarmCluster`: formed (3 hosts started in parallel, registry up, `swarm init`, 2 joins, 3 nodes Ready) in
  3.8-4.5 s (hosts 3.6 s, swarm 0.7 s). `push()` of the 250 MB web image (load into manager + push) 10 s.
  `docker stack deploy` of 2 dnsrr replicas pulled from the registry -> both running 4.7 s. Teardown 2.2 s.
- Whole folder (`pytest tests/hosts`): about 50 s with cached images.

Flags that replace `--privileged` (it fails here: `unable to apply caps: operation not permitted`, because
dockerd's bounding set lacks CAP_SYS_RESOURCE and 20.10 asks for every capability):

- `cap_add` = the capabilities in `/proc/<dockerd pid>/status` CapBnd (`dockerd_capabilities()`), falling back
  to `ALL` when it cannot be read (remote engine);
- `security_opt` seccomp=unconfined, apparmor=unconfined; `MaskedPaths: []` and `ReadonlyPaths: []` in the
  HostConfig (that is what the CLI's `--security-opt systempaths=unconfined` means);
- `device_cgroup_rules` `a *:* rwm`; a named volume `<name>-docker` on /var/lib/docker (overlay2 works on it);
- inside, before dockerd: `mount -o remount,rw /sys`, `remount,rw /sys/fs/cgroup` and `remount,bind,rw` of
  every read-only cgroup v1 hierarchy; `mknod /dev/fuse` for the fuse-overlayfs fallback.
- dockerd: `--host unix:///var/run/docker.sock --host tcp://0.0.0.0:2375 --tls=false`; storage driver chosen
  by dockerd (overlay2 here; `storage_driver="vfs"` and `"fuse-overlayfs"` were checked to work as well).
- Ports 22 and 2375 published on 127.0.0.1 with Docker-picked host ports; no restart policy.

Traps found:

1. dockerd 20.10 rejects capability names newer than its list although the kernel bounding set has them:
   `invalid CapAdd: unknown capability: "CAP_PERFMON"` (also BPF, CHECKPOINT_RESTORE). The create is retried
   without each name the engine reports.
2. `systempaths=unconfined` is CLI-only: the API answers `invalid --security-opt 2: "systempaths=unconfined"`.
   The container is therefore created through the low-level API with empty MaskedPaths/ReadonlyPaths
   (docker-py has no parameter for them).
3. dockerd 26 listening on tcp://0.0.0.0 without TLS sleeps 15 s at start-up ("Startup is intentionally being
   slowed down"): 16 s to ready. With an explicit `--tls=false` it only sleeps 1 s.
4. docker-py 7.2 needs `paramiko` for ANY `ssh://` base_url, also with `use_ssh_client=True` (the adapter
   import fails first: "Install paramiko package to enable ssh:// support"). paramiko is not in the venv, so
   Python code reaches the inner engine through `forward_docker_socket()` (`unix://...`) or the tcp API.
   Through paramiko (if installed) only ~/.ssh/config and ~/.ssh/known_hosts would be read anyway.
5. `ssh://<alias>` only resolves through `ssh -F ssh_config`; the docker CLI and compose run plain `ssh`, so
   `cli_env()` puts a wrapper `ssh` (`exec ssh -F <cfg> "$@"`) first on PATH.
6. A probe that sees the container exit must fail at once, not wait for the deadline: `HostExited` is
   raised with the container's last log lines (e.g. `unknown flag: --no-such-flag` in 0.5 s).
7. The host key is read from the container's /etc/ssh/ssh_host_ed25519_key.pub (generated per container at
   start; the image holds no host keys) and written as `[127.0.0.1]:<port>` to the known_hosts file.
8. Unix-socket forwarding (`-L /path.sock:/var/run/docker.sock`) needs `AllowStreamLocalForwarding yes`
   (sshd_config) and a local path under ~100 bytes (sun_path); `StreamLocalBindUnlink yes` and
   `ExitOnForwardFailure yes` make reruns and failures clean.
9. Docker 26 rejects one-character container names (`Invalid container name (a)`).
10. Debian's iptables uses the nft backend; it works here. The entry point falls back to iptables-legacy
    when `iptables -t nat -nL` fails.
11. Swarm: service VIPs and the ingress mesh need IPVS, which this kernel lacks: use `endpoint_mode: dnsrr`
    (then `<service>` and `tasks.<service>` resolve to the task IPs) and `mode: host` ports.
    The test runs `docker stack deploy --resolve-image never --detach=true`: the local CLI must not try to
    query the registry (never tried without).
12. The registry is named by its address on the cluster's bridge network, which the nodes and this machine
    both reach (a container name would resolve only on that network, and the CLI reads manifests there);
    each node's dockerd gets `--insecure-registry <the network's subnet>` (`dockerd_args` must be single
    words: they are word-split by the entry point).
13. Minimal images: debian:trixie-slim has neither python3 nor curl (the host image installs curl; the web
    image installs python3).
"""

from .remote import (
    HostExited,
    RemoteHost,
    RemoteHostError,
    content_hash,
    dockerd_capabilities,
    ensure_image,
    remove_leftovers,
)
from .swarm import SwarmCluster

__all__ = [
    "HostExited",
    "RemoteHost",
    "RemoteHostError",
    "SwarmCluster",
    "content_hash",
    "dockerd_capabilities",
    "ensure_image",
    "remove_leftovers",
]
