# Runs as root: imported by hermes-boot (cont-init 01-hermes-setup, restore helpers); ownership.py also by the hermes agent, for a dry run.
"""Root's code in the image: the boot's privileged half (boot_root, ownership) and restore's swap (restore_swap)."""
