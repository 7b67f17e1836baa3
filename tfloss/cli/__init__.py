"""Command line: ``python -m tfloss {compare,elbo}``.

Each command is a module of this package exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``.
"""

import argparse
import importlib

COMMANDS = ("compare", "elbo")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tfloss", description="tfloss command line")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tfloss.cli.{name}")
        except ModuleNotFoundError as err:  # a command whose module is not written yet
            if err.name != f"tfloss.cli.{name}":
                raise
            continue
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    args = parser.parse_args(argv)
    return modules[args.command].run(args) or 0
