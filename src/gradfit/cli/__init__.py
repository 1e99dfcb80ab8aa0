"""The command line: the only package that prints, draws progress bars or exits.

Every user error becomes one line on stderr and exit code 2; internal errors exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gradfit import __version__
from gradfit.cli.data_commands import add_data_commands
from gradfit.cli.demo import cmd_demo
from gradfit.cli.options import (
    OneLineParser,
    launched_rank,
    learning_rate,
    positive_int,
    seed,
)
from gradfit.cli.render import escape
from gradfit.errors import GradfitError

__all__ = ["main"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="gradfit",
        description="Linear regression trained by gradient descent on PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"gradfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    demo = sub.add_parser("demo", help="the tutorial end to end on the built-in crop data")
    demo.add_argument("--seed", type=seed, default=0, help="seed of weights and shuffling (0)")
    demo.add_argument("--epochs", type=positive_int, default=100, help="epochs per path (100)")
    demo.add_argument("--lr", type=learning_rate, default=1e-5, help="learning rate (1e-5)")
    demo.add_argument(
        "--rows",
        type=int,
        choices=(5, 15),
        default=15,
        help="15: the seed's set; 5: part 1's set (15)",
    )
    demo.set_defaults(handler=cmd_demo)

    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gradfit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error: one line, SystemExit(2) (OneLineParser)
    if getattr(args, "handler", None) is None:
        args = parser.parse_args(["demo"])
    # Under torchrun (several processes): `fit` runs on every process as one program; the other
    # commands run once, on rank 0. Messages come from rank 0 only.
    rank = launched_rank()
    if rank and getattr(args, "command", None) != "fit":
        return EXIT_OK
    try:
        code: int = args.handler(args, sys.stdout)
    except GradfitError as exc:
        if not rank:
            print(f"gradfit: error: {escape(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gradfit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # an internal error: say so, one line, exit 1
        print(
            f"gradfit: internal error ({type(exc).__name__}): {escape(exc)}. "
            "Please report it with the command you ran.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
