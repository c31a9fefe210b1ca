"""hermesctl: operate fleets of Hermes Agent containers through the Docker API and s6."""

__version__ = "0.1.0"
