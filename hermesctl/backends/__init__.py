"""Orchestrator backends behind one seam (hermesctl.backends.base): plain Docker and Swarm.
The only package that uses the Docker SDK's API (daemon.py for one daemon)."""
