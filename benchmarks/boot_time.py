"""Boot time of a Hermes container: `docker run` to readiness (cont-init done, reconciler's
default line written), and the same after `docker restart` with running gateways to restore.

    python benchmarks/boot_time.py [--runs 5]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import IMAGE, client, run_id, summary, wait_booted  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    dc = client()
    rid = run_id()
    cold, restart = [], []
    for i in range(args.runs):
        started = time.monotonic()
        c = dc.containers.run(args.image, ["sleep", "infinity"], name=f"bench-boot-{rid}-{i}", detach=True)
        try:
            wait_booted(c)
            cold.append(time.monotonic() - started)
            # Two profiles with running gateways, then measure a restart that restores them.
            c.exec_run(["sh", "-c", "for p in a b; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md && "
                        "echo '{\"desired_state\":\"running\"}' > /opt/data/profiles/$p/gateway_state.json; done"], user="hermes")
            started = time.monotonic()
            c.restart(timeout=20)
            wait_booted(c)
            restart.append(time.monotonic() - started)
        finally:
            c.remove(force=True, v=True)
    print(f"docker run -> ready (first boot, volume seeded): {summary(cold)}")
    print(f"docker restart -> ready (2 gateways restored):   {summary(restart)}")


if __name__ == "__main__":
    main()
