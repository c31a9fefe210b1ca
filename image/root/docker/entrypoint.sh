#!/bin/sh
# Runs as root: by templates that call the pre-s6 entrypoint path; it runs cont-init 01-hermes-setup.
# Back-compat shim: scripts that hard-coded the pre-s6 entrypoint path still prepare the volume.
exec /etc/cont-init.d/01-hermes-setup "$@"
