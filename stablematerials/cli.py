"""The `stablematerials` command: one subcommand per module in `stablematerials.commands`.

Each such module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int` (the exit code). A module
that runs a script with options of its own (the training commands) sets `PASSTHROUGH_AFTER = N`: after the command
and N positional arguments, everything (--help included) goes to the script as `args.options`.
Errors a user can fix (`ValueError`, any `OSError` such as a missing file or an unwritable folder, running out of
memory) print one line on stderr and exit 2; a closed output pipe (`... | head`) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from . import __version__, commands


def _subcommand_modules() -> dict[str, object]:
    found = {}
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found[info.name] = importlib.import_module(f"{commands.__name__}.{info.name}")
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stablematerials", description="Tileable PBR materials from prompts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _subcommand_modules().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(what argparse parses, the options passed on to a script) for `argv`; None when the command takes none."""
    modules = _subcommand_modules()
    for i, token in enumerate(argv):
        if token in modules:
            keep = getattr(modules[token], "PASSTHROUGH_AFTER", None)
            if keep is None:
                return argv, None
            positional = argv[i + 1 : i + 1 + keep]
            if len(positional) < keep or any(arg.startswith("-") for arg in positional):
                return argv, None  # `train` or `train --help`: argparse answers (the error, the command's help)
            return argv[: i + 1 + keep], argv[i + 1 + keep :]
        if not token.startswith("-"):
            break
    return argv, None


def _quiet_libraries() -> None:
    """Keep stderr for our own messages: no weight-loading progress bars or load reports from the libraries."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import diffusers.utils.logging as dlog
        import transformers.utils.logging as tlog
    except ImportError:  # pragma: no cover
        return
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    dlog.set_verbosity_error()
    dlog.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    # Local folders and the embedded model never need the hub; a hub id given by the user still works
    # when the user has set HF_HUB_OFFLINE=0 explicitly.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    head, rest = _split_passthrough(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(head)
    if rest is not None:
        args.options = rest
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_libraries()
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`stablematerials procedural --list | head -3`): stop printing, quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer whose pipe closed
    except (ValueError, OSError, MemoryError) as e:
        if os.environ.get("STABLEMATERIALS_DEBUG"):
            raise  # the traceback, for a bug report
        print(f"stablematerials {args.command}: error: {describe_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stablematerials {args.command}: interrupted", file=sys.stderr)
        return 130


def describe_error(error: BaseException) -> str:
    """One line for an error a user can act on: its message, an OSError as 'what: path', memory as advice."""
    if isinstance(error, MemoryError):
        return "out of memory; try a smaller --size or fewer materials at once"
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    text = str(error) or type(error).__name__
    return text.splitlines()[0] if text.strip() else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
