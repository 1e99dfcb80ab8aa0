"""The command line: the only package that prints, draws progress bars or exits.

Every user error becomes one line on stderr and exit code 2; internal errors exit 1. Ctrl-C
exits 130 and SIGTERM (what Slurm and Kubernetes send before they kill) 143, SIGHUP 129, each
with one line, after the same clean-up (temporary files removed, read-ahead threads stopped).
A failed write to standard output (a full disk) is a user error; a closed pipe ends quietly.

This module imports nothing heavy at import time: :func:`main` imports the commands (and with
them PyTorch) inside its guard, so that Ctrl-C at any moment gives one line, not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, TextIO, cast

from gradfit._version import __version__
from gradfit.errors import GradfitError

__all__ = ["entry", "main"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


# ----------------------------------------------------------------------------- signals


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C's KeyboardInterrupt is, so that
    every clean-up that runs on Ctrl-C (``finally`` blocks, :func:`gradfit.atomic.atomic_write`
    removing its temporary file) runs on these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# What each signal is called on stderr; its exit code is 128 + its number.
_TERMINATING = {
    getattr(signal, name): word
    for name, word in (("SIGTERM", "terminated"), ("SIGHUP", "hung up"))
    if hasattr(signal, name)
}


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # While cleaning up, further such signals are ignored (SIGKILL still ends the process).
    for number in _TERMINATING:
        signal.signal(number, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def _terminating_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread while the command runs
    (the previous handlers restored afterwards). A signal already ignored (``nohup``) stays
    ignored; outside the main thread (a test calling :func:`main`) nothing is changed."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for number in _TERMINATING:
            handler = signal.getsignal(number)
            if handler is not signal.SIG_IGN:
                previous[number] = handler
                signal.signal(number, _raise_terminated)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line for Ctrl-C or a terminating signal; the exit code, 128 + the signal."""
    signum = exc.signum if isinstance(exc, Terminated) else None
    word = "interrupted" if signum is None else _TERMINATING.get(signum, "terminated")
    with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
        print(f"gradfit: {word}", file=sys.stderr)
    return EXIT_INTERRUPTED if signum is None else 128 + signum


# ----------------------------------------------------------------------------- standard output


class StandardOutputError(GradfitError):
    """Standard output cannot be written (a full disk, an I/O error); not a closed pipe."""


class _StandardOutput:
    """Standard output as a command writes it: a write or flush that fails with an OSError
    other than a closed pipe raises :class:`StandardOutputError`, one line naming standard
    output (not an internal error); everything else is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _output_error(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _output_error(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_error(exc: OSError) -> StandardOutputError:
    return StandardOutputError(f"cannot write to standard output ({exc.strerror or exc})")


def _discard_standard_output() -> None:
    """After standard output failed (a full disk, a closed pipe): what is still buffered goes
    to the null device, so that Python's flush at exit does not fail a second time and print
    "Exception ignored ..." after the one line."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        descriptor = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from gradfit.cli.data_commands import add_data_commands
    from gradfit.cli.diagnose_commands import add_diagnose_commands
    from gradfit.cli.options import OneLineParser, learning_rate, positive_int, seed
    from gradfit.cli.path_command import add_path_command

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
    demo.set_defaults(handler=_cmd_demo)

    add_data_commands(sub)
    add_diagnose_commands(sub)
    add_path_command(sub)
    return parser


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """``gradfit demo``: the demo's module (and torch) imported when it runs, not by the
    parser (`gradfit --help` does not wait for torch)."""
    from gradfit.cli.demo import cmd_demo

    return cmd_demo(args, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gradfit`` command; returns the exit code."""
    with _terminating_signals_raise():
        try:
            return _run(argv)
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: anywhere, imports included
            return _interrupted(exc)


def entry() -> int:
    """The ``gradfit`` program (``python -m gradfit``, the console script): :func:`main` on the
    command line's arguments, with the interpreter's own shutdown made safe from signals.

    After Ctrl-C or SIGTERM the process ends at once (``os._exit``, once the one line is out
    and the clean-up done): the interpreter's shutdown would tear native libraries down (C++
    destructors at exit) while their own worker threads may still be in a task the interrupt
    abandoned, and abort ("terminate called without an active exception", SIGABRT). After a
    command that finished, a signal during the shutdown (finalizers, which can take a second
    after PyTorch) ends the process at once with the command's own exit code, instead of a
    traceback or an exit status of -2."""
    code = main()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
        sys.stderr.flush()
    if code >= 128:  # interrupted (128 + the signal's number)
        os._exit(code)

    def exit_now(signum: int, frame: FrameType | None) -> None:
        os._exit(code)

    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, *_TERMINATING):
            if signal.getsignal(number) is not signal.SIG_IGN:
                signal.signal(number, exit_now)
    return code


def _run(argv: Sequence[str] | None) -> int:
    from gradfit.cli.options import launched_rank, srun_without_torchrun
    from gradfit.cli.render import escape

    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # a usage error: one line, SystemExit(2) (OneLineParser)
    except BrokenPipeError:  # --help into a closed pipe
        _discard_standard_output()
        return EXIT_OK
    except OSError as exc:  # --help, --version into a full disk
        _discard_standard_output()
        print(f"gradfit: error: {_output_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "handler", None) is None:
        args = parser.parse_args(["demo"])
    # Under torchrun (several processes): `fit` runs on every process as one program; the other
    # commands run once, on rank 0. Messages come from rank 0 only.
    rank = launched_rank()
    if rank and getattr(args, "command", None) != "fit":
        return EXIT_OK
    srun = srun_without_torchrun()
    if srun is not None:  # several Slurm tasks that are not one group: task 0 says so
        if os.environ.get("SLURM_PROCID") == "0":
            print(f"gradfit: error: {srun}", file=sys.stderr)
        return EXIT_USAGE
    out = _StandardOutput(sys.stdout)
    try:
        code: int = args.handler(args, cast(TextIO, out))
        out.flush()  # a full disk shows at the last flush of a short output
    except GradfitError as exc:
        if isinstance(exc, StandardOutputError):
            _discard_standard_output()
        # Under torchrun rank 0 speaks for the group, unless the error says who does (one of
        # the group's own: a lost peer, a group that cannot form).
        shown = getattr(exc, "shown_here", None)
        if (not rank) if shown is None else shown:
            print(f"gradfit: error: {escape(exc)}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    except BrokenPipeError:
        _discard_standard_output()
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
