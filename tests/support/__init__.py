"""What the tests share, by subject (tests/conftest.py imports the fixtures from here and keeps
the old `from conftest import NAME` working):
  settings    the tree, the images' tags, this run's id and state directory, CI's rule (a Docker
              test that cannot run fails in CI, skips locally);
  images      the daemon's client, the Hermes images (slim, full) and the upgrade tests' derived ones;
  containers  real Hermes containers that a fixture removes, waiting for boot, sh/svstat/wait_for;
  runner      the real CLI in its own process (forked from a pre-imported zygote), in the
              background, interrupted; the launcher as pip installs it;
  daemons     a second dockerd on this machine, one real two-node swarm for the session;
  fake_docker the one fake Docker API for daemon-free tests (fakefleet.py and fakebackend.py
              build their fleets and instances on it).
"""
