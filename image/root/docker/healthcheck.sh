#!/bin/sh
# Runs as root: Docker's HEALTHCHECK runs it; its first act is to become hermes.
# HEALTHCHECK: the agent's `health` (hermes_supervise.queries.health): s6 is PID 1, the boot has
# finished, and no gateway that is wanted up is stuck down, parked or unsupervised. One JSON line
# (Docker keeps it in the container's health log); exit 0 healthy, 1 not.
# Docker runs it as root; everything it reads is hermes', so it reads it as hermes.
[ "$(id -u)" = 0 ] && exec /command/s6-setuidgid hermes "$0" "$@"
exec /opt/hermes/docker/hermes-ctl-agent health
