# Runs as root: once, at image build (docker build's RUN).
"""Print hermes' top-level subcommands, one per line, from its own argument parser (image build
time; the main wrapper routes these names to hermes even when a program has the same name).
The parser is built inside hermes_cli.main.main(), so catch it at its first parse."""
import argparse
import sys

_parse = argparse.ArgumentParser.parse_known_args


def _capture(self, args=None, namespace=None):
    for action in self._actions:
        if isinstance(action, argparse._SubParsersAction):
            print("\n".join(sorted(action.choices)))
            sys.exit(0)
    return _parse(self, args, namespace)


argparse.ArgumentParser.parse_known_args = _capture
sys.argv = ["hermes", "--help"]
from hermes_cli.main import main  # noqa: E402

main()
sys.exit(1)
