#!/bin/sh
# Back-compat shim: scripts that hard-coded the pre-s6 entrypoint path still prepare the volume.
exec /opt/hermes/docker/stage2-hook.sh "$@"
