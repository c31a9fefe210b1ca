"""Issue 16: a boot is complete (boot log, stage2-done, healthcheck) only when /run/service is
supervised and every slot that should be up is up; boots in a row under load show no moment
where a slot registration fails.

Five containers at --cpus 0.5 boot together, each 4 times in the suite (HERMES_BOOT_LOAD_BOOTS=10
for the fifty of issue 16: each boot starts a gateway and creates a profile, about two cores'
worth of work for minutes, which the rest of the suite, sharing them, pays for): a first boot on a fresh volume, then
the others by `docker kill` + `docker start` on the same volume (the cheapest whole boot: /init, cont-init,
the reconciler, a wanted-running default gateway and every profile made by the boots before). A
probe started with each boot waits for the boot log's `default` line and checks, at that very
moment, what a user would do next; then the same once stage2-done appears."""
import os
import re
import threading
from datetime import datetime, timezone

from conftest import wait_for

CONTAINERS = 5
BOOTS_EACH = int(os.environ.get("HERMES_BOOT_LOAD_BOOTS", "4"))
LOG = "/opt/data/logs/container-boot.log"

# $1 = this boot's number: the profile the probe creates is new in every boot.
PROBE = r"""
n=$1 log=""" + LOG + r"""
until grep -q 'profile=default' "$log" 2>/dev/null; do sleep 0.02; done
/command/s6-svscanctl -a /run/service || echo "FAIL scanner not listening"
[ "$(/command/s6-svstat -o up /run/service/gateway-default)" = true ] || echo "FAIL default gateway not up"
for slot in /run/service/gateway-*; do
  /command/s6-svstat "$slot" >/dev/null || echo "FAIL $slot unsupervised"
done
out=$(hermes profile create "early$n" 2>&1)
case "$out" in *[Cc]"ould not register"*) echo "FAIL registration: $out" ;; esac
/command/s6-svstat "/run/service/gateway-early$n" >/dev/null || echo "FAIL gateway-early$n unsupervised"
until test -e /run/s6/stage2-done; do sleep 0.02; done
for svc in main-hermes ctl-agent dashboard; do
  /command/s6-svstat "/run/service/$svc" >/dev/null || echo "FAIL $svc unsupervised"
done
for svc in main-hermes ctl-agent; do
  [ "$(/command/s6-svstat -o up "/run/service/$svc")" = true ] || echo "FAIL $svc not up"
done
health=$(/opt/hermes/docker/healthcheck.sh) || echo "FAIL unhealthy: $health"
grep -E 'action=failed|warning=' "$log" | sed 's/^/FAIL boot log: /'
echo PROBE-DONE
"""


# The reconciler echoes each boot-log line to docker logs; any other line of its is an error.
BOOT_LINE = re.compile(r"02-reconcile-profiles: \d{4}-\d\d-\d\dT\S+ ")


def _wrong(line: str) -> bool:
    if "ould not register" in line or "action=failed" in line or "warning=" in line:
        return True
    return line.startswith("02-reconcile-profiles:") and not BOOT_LINE.match(line)


def _boot_and_probe(c, boot: int) -> list[str]:
    """Start (or restart) c, probe this boot; every problem as a line."""
    since = datetime.now(timezone.utc)
    if boot:
        c.start()
    out = c.exec_run(["timeout", "240", "sh", "-c", PROBE, "probe", str(boot)], user="hermes").output.decode()
    problems = [line for line in out.splitlines() if line.startswith("FAIL")]
    if "PROBE-DONE" not in out:
        problems.append(f"probe did not finish: {out[-500:]!r}")
    logs = c.logs(since=since).decode(errors="replace")
    problems += [f"docker logs: {line}" for line in logs.splitlines() if _wrong(line)]
    return [f"{c.name} boot {boot}: {p}" for p in problems]


def test_boots_under_load_never_say_ready_before_every_slot_is_supervised(containers):
    started = [containers.start(f"boot50-{i}", wait=False, cpu_quota=50000, cpu_period=100000,
                                volume=containers.volume(f"boot50-{i}"),
                                env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"}) for i in range(CONTAINERS)]
    problems: list[str] = []
    boots: list[str] = []

    def ten_boots(c):
        for boot in range(BOOTS_EACH):
            try:
                problems.extend(_boot_and_probe(c, boot))
                boots.append(f"{c.name}:{boot}")
                if boot < BOOTS_EACH - 1:
                    # The next boot's probe must see only that boot's lines.
                    c.exec_run(["rm", "-f", LOG], user="hermes")
                    c.kill()
                    wait_for(lambda: (c.reload(), c.status)[1] == "exited", timeout=30, interval=0.1,
                             what=f"{c.name} stopped")
            except Exception as exc:  # noqa: BLE001 - reported with the rest, the other threads go on
                problems.append(f"{c.name} boot {boot}: {type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=ten_boots, args=(c,)) for c in started]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, "\n".join(problems)
    assert len(boots) == CONTAINERS * BOOTS_EACH
