"""Small images on top of ours, built in a second (no second full build): a "next" version that
only changes the hermes-agent version label, and a "bad" one whose boot fails after changing data."""
import io
import tarfile

# A cont-init that "migrates" (flips a desired state, leaves a stray WAL beside a database),
# then fails the boot: a rollback must undo exactly those changes.
BROKEN_MIGRATION = ("#!/bin/sh\n"
                    "sed -i s/running/stopped/ /opt/data/profiles/coder/gateway_state.json\n"
                    "echo junk > /opt/data/profiles/coder/state.db-wal\n"
                    "exit 3\n")
# A cont-init that changes every kind of entry (symlinks and an empty directory added, modes
# changed, a file and a symlink replaced by other symlinks, an empty directory removed), then fails
# the boot: the rollback must give back exactly the backup's tree.
TREE_MIGRATION = ("#!/bin/sh\n"
                  "set -e\n"
                  "ln -s /etc/passwd /opt/data/added-link\n"
                  "mkdir /opt/data/added-empty\n"
                  "mkdir /opt/data/profiles/coder/added-dir && echo x > /opt/data/profiles/coder/added-dir/f\n"
                  "chmod 0600 /opt/data/config.yaml\n"
                  "chmod 0700 /opt/data/profiles\n"
                  "rm /opt/data/profiles/coder/.env && ln -s /nowhere /opt/data/profiles/coder/.env\n"
                  "rm /opt/data/soul-link && ln -s /etc/hostname /opt/data/soul-link\n"
                  "rmdir /opt/data/kept-empty\n"
                  "exit 3\n")
NEXT_VERSION = "0.19.0-next"


def build(client, tag: str, base: str, extra: str, files: dict[str, str] | None = None) -> None:
    """`FROM base` plus `extra` Dockerfile lines, with `files` in the build context."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in {"Dockerfile": f"FROM {base}\n{extra}", **(files or {})}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)


def build_next(client, tag: str, base: str) -> None:
    build(client, tag, base, f"LABEL io.hermes-agent.version={NEXT_VERSION}\n")


def build_bad(client, tag: str, base: str) -> None:
    build(client, tag, base, "COPY 99-broken-migration /etc/cont-init.d/99-broken-migration\n",
          {"99-broken-migration": BROKEN_MIGRATION})


def build_bad_tree(client, tag: str, base: str) -> None:
    build(client, tag, base, "COPY 99-tree-migration /etc/cont-init.d/99-tree-migration\n",
          {"99-tree-migration": TREE_MIGRATION})


def build_unhealthy(client, tag: str, base: str) -> None:
    """Boots fine, but its healthcheck fails at once: Docker reports it unhealthy within seconds
    (the start period is set too, or the base image's 60 s would be inherited)."""
    build(client, tag, base, 'HEALTHCHECK --interval=1s --timeout=2s --start-period=1s --retries=1 CMD ["false"]\n')


def build_quick_health(client, tag: str, base: str) -> None:
    """Ours with its own healthcheck probed every 2 s instead of 30: a container's first verdict
    comes in seconds, and as an image default (not a container setting, which recreate keeps) it
    gives way to the next image's own healthcheck on upgrade."""
    build(client, tag, base, 'HEALTHCHECK --interval=2s --timeout=10s --start-period=60s --retries=3 '
                             'CMD ["/opt/hermes/docker/healthcheck.sh"]\n')


def build_never_healthy(client, tag: str, base: str) -> None:
    """Boots and serves by our own gate, but its healthcheck never passes inside a start period
    longer than any upgrade waits: Docker keeps it `starting` (a failing check in the start
    period does not count), and swarm would kill and replace it forever."""
    build(client, tag, base, 'HEALTHCHECK --interval=1s --timeout=2s --start-period=3600s --retries=1 CMD ["false"]\n')
