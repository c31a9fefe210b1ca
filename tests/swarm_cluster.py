"""A real two-node Docker Swarm on this one machine, for tests (and by hand:
`python3 tests/swarm_cluster.py up|down NAME`).

Each node is a dockerd in its own network and UTS namespace (so each has its own IP and
hostname), with its own bridge inside that namespace (a dockerd given `--bridge none` in the
host's namespace would delete the main daemon's docker0). The namespaces are joined by a host
bridge and a veth each; the host's FORWARD policy is DROP with bridge netfilter on, so one
DOCKER-USER rule lets traffic across that bridge through. The main daemon is never touched.
`ip netns exec` remounts /sys, where dockerd then fails ("Devices cgroup isn't mounted"), so
dockerd is started with nsenter.
"""
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

START_DOCKERD = 'hostname "$0" && exec dockerd "$@"'


def _run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@dataclass
class Node:
    hostname: str
    netns: str
    ip: str
    root: Path
    proc: subprocess.Popen | None = None

    @property
    def sock(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=120)

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return _run("docker", "-H", self.url, *args, check=check, **kwargs)


@dataclass
class SwarmCluster:
    name: str                    # prefix of everything created: netns, bridge, veths, dirs
    subnet: str = "10.231.7"     # /24 on the bridge joining the nodes
    nodes: list[Node] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.name}b"[:15]

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def up(self, images: list[str]) -> "SwarmCluster":
        base = Path(f"/tmp/{self.name}")
        base.mkdir(parents=True, exist_ok=True)
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "link", "set", self.bridge, "up")
        _run("iptables", "-I", "DOCKER-USER", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT")
        for i in (1, 2):
            node = Node(hostname=f"{self.name}-n{i}", netns=f"{self.name}n{i}", ip=f"{self.subnet}.{i + 1}",
                        root=base / f"n{i}")
            node.root.mkdir(parents=True, exist_ok=True)
            self.nodes.append(node)
            self._plumb(node, i)
            self._start_dockerd(node)
        for node in self.nodes:
            self._wait_for(node)
        self._load_images(images)
        manager = self.manager
        manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--listen-addr", f"{manager.ip}:2377",
                       "--default-addr-pool", "10.232.0.0/16")
        token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        self.nodes[1].docker("swarm", "join", "--token", token, "--advertise-addr", self.nodes[1].ip,
                             f"{manager.ip}:2377")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = manager.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
            if sum(1 for line in ready if line.endswith(" Ready")) == 2:
                return self
            time.sleep(0.5)
        raise RuntimeError(f"swarm nodes not ready: {ready}")

    def label_instances(self) -> None:
        """Pin hermes-1 to node 1 and hermes-2 to node 2 (compose/stack.yaml's placement); the
        manager's own node is reached through the manager, the worker through its label."""
        n1, n2 = self.nodes
        n1.docker("node", "update", "--label-add", "io.hermes-agent.instance.hermes-1=true", n1.hostname)
        n1.docker("node", "update", "--label-add", "io.hermes-agent.instance.hermes-2=true", n2.hostname)
        n1.docker("node", "update", "--label-add", f"io.hermes-agent.endpoint={n2.url}", n2.hostname)

    def deploy_stack(self, stack: str, compose_file: Path, env: dict) -> None:
        self.manager.docker("stack", "deploy", "-c", str(compose_file), "--resolve-image", "never", stack, env=env)

    def remove_stack(self, stack: str, timeout: float = 120) -> None:
        """The stack's services go, and then its containers on every node (a later stack on this
        cluster lists only its own); its volumes stay until down()."""
        self.manager.docker("stack", "rm", stack, check=False)
        label = f"label=com.docker.stack.namespace={stack}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(node.docker("ps", "-aq", "--filter", label, check=False).stdout.split() for node in self.nodes):
                return
            time.sleep(0.5)
        raise RuntimeError(f"containers of stack {stack} still there after {timeout}s")

    def _plumb(self, node: Node, i: int) -> None:
        host_side, inner = f"{self.name}h{i}"[:15], f"{self.name}p{i}"[:15]
        _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", host_side, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", host_side, "master", self.bridge, "up")
        _run("ip", "link", "set", inner, "netns", node.netns)
        ns = ["nsenter", f"--net=/run/netns/{node.netns}"]
        _run(*ns, "ip", "link", "set", "lo", "up")
        _run(*ns, "ip", "addr", "add", f"{node.ip}/24", "dev", inner)
        _run(*ns, "ip", "link", "set", inner, "up")
        _run(*ns, "ip", "link", "add", "hctcd0", "type", "bridge")  # the node's own docker bridge
        _run(*ns, "ip", "addr", "add", f"10.{240 + i}.0.1/24", "dev", "hctcd0")
        _run(*ns, "ip", "link", "set", "hctcd0", "up")

    def _start_dockerd(self, node: Node) -> None:
        log = open(node.root / "dockerd.log", "w")
        node.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{node.netns}", "unshare", "--uts", "sh", "-c", START_DOCKERD,
             node.hostname, "--host", node.url, "--data-root", str(node.root / "data"),
             "--exec-root", str(node.root / "exec"), "--pidfile", str(node.root / "docker.pid"),
             "--bridge", "hctcd0", "--containerd-namespace", f"{node.netns}c",
             "--containerd-plugins-namespace", f"{node.netns}p"],
            stdout=log, stderr=subprocess.STDOUT)

    def _wait_for(self, node: Node) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"dockerd of {node.hostname} exited: "
                                   f"{(node.root / 'dockerd.log').read_text()[-2000:]}")
            if node.sock.exists() and node.docker("info", "--format", "{{.ID}}", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"dockerd of {node.hostname} did not answer")

    def _load_images(self, images: list[str]) -> None:
        archive = Path(f"/tmp/{self.name}/images.tar")
        _run("docker", "save", "-o", str(archive), *images)
        loads = [subprocess.Popen(["docker", "-H", node.url, "load", "-q", "-i", str(archive)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for node in self.nodes]
        for proc in loads:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"docker load failed: {err.decode()[-500:]}")
        archive.unlink()

    def down_in_background(self) -> None:
        """Start down() in a thread (once); down_after_background() waits for it."""
        import threading
        if getattr(self, "_going", None) is None:
            self._going = threading.Thread(target=self.down, name=f"down-{self.name}", daemon=True)
            self._going.start()

    def down_after_background(self) -> None:
        """down(), or the end of the down() started in the background."""
        going = getattr(self, "_going", None)
        if going is None:
            self.down()
        else:
            going.join()

    def down(self) -> None:
        """Everything up() made goes, whatever state it is in."""
        for node in reversed(self.nodes) if self.nodes else self._guess_nodes():
            if node.sock.exists():
                node.docker("swarm", "leave", "--force", check=False, timeout=60)
                ids = node.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    node.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
            pid_file = node.root / "docker.pid"
            if pid_file.exists():
                try:
                    pid = int(pid_file.read_text().strip())
                    subprocess.run(["kill", "-TERM", str(pid)], capture_output=True)
                    # Our own dockerd (nsenter and unshare exec it: it is node.proc) stays in /proc
                    # as a zombie until it is reaped: wait for it, or each node cost the whole 30 s
                    # (its log says "Daemon shutdown complete" within a second of the TERM).
                    if node.proc is not None and node.proc.pid == pid:
                        node.proc.wait(timeout=30)
                    else:
                        deadline = time.monotonic() + 30
                        while time.monotonic() < deadline and _alive(pid):
                            time.sleep(0.2)
                except (ValueError, subprocess.TimeoutExpired):
                    pass
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.proc.send_signal(signal.SIGKILL)
            # dockerd leaves its data root bind-mounted on itself, and netns files under exec-root.
            for mount in sorted(_mounts_under(node.root), key=len, reverse=True):
                _run("umount", "-l", mount, check=False)
            _run("ip", "netns", "del", node.netns, check=False)
            shutil.rmtree(node.root, ignore_errors=True)
        _run("iptables", "-D", "DOCKER-USER", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT", check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        for i in (1, 2):
            _run("ip", "link", "del", f"{self.name}h{i}"[:15], check=False)
        shutil.rmtree(f"/tmp/{self.name}", ignore_errors=True)

    def _guess_nodes(self) -> list[Node]:
        return [Node(f"{self.name}-n{i}", f"{self.name}n{i}", "", Path(f"/tmp/{self.name}/n{i}")) for i in (2, 1)]


def _alive(pid: int) -> bool:
    """Is the process there and not a zombie (another process's child, left to its parent)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]


if __name__ == "__main__":
    verb, name = sys.argv[1], sys.argv[2]
    cluster = SwarmCluster(name)
    if verb == "up":
        cluster.up(sys.argv[3:])
        print(" ".join(n.url for n in cluster.nodes))
    else:
        cluster.down()
