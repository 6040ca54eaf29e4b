"""Flagfiles whose includes resolve relative to the flagfile itself, so a run works from any folder.

absl reads `--flagfile=PATH` relative to the working directory, also inside a flagfile; here an
included path is looked up beside the including file first (experiments/configs includes its
partials as `--flagfile=_hmdb51.flags`), then in the working directory (older flagfiles that
include `experiments/configs/...` from the repository root). A flagfile named on the command line is
relative to the working directory, as usual. The other paths a flagfile holds (data, runs) stay
relative to the working directory.

Entry points run `flagfiles.run(main)` instead of `app.run(main)`.
"""
import os
import re
import sys

from absl import app, flags

_FLAGFILE = re.compile(r"^--?flagfile=(.*)$")


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [(number, line.strip()) for number, line in enumerate(f, start=1)]


def _include(value, including):
    """The path of an include `value` in the flagfile `including` (None: on the command line)."""
    value = os.path.expanduser(value)
    candidates = [value] if os.path.isabs(value) or including is None else [
        os.path.join(os.path.dirname(including), value), value]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    where = f" (included by {including})" if including else ""
    raise flags.Error(f"flagfile {value} not found{where}; looked for {', '.join(candidates)}")


def _expand(arg, including, chain, where=""):
    match = _FLAGFILE.match(arg)
    if not match:
        return [arg]
    try:
        path = _include(match.group(1), including)
    except flags.Error as error:
        raise flags.Error(f"{where}{error}") from None
    if path in chain:
        raise flags.Error(f"{where}flagfile {path} includes itself (through {' → '.join(chain)})")
    expanded = []
    for number, line in _lines(path):
        if line and not line.startswith(("#", "//")):
            expanded += _expand(line, path, chain + (path,), f"{path}:{number}: ")
    return expanded


def expand_flagfiles(argv):
    """argv with every `--flagfile=` replaced by the flags it holds, includes expanded in place
    (later values win, as in absl); everything after a bare `--` is left as it is."""
    expanded = list(argv[:1])
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            expanded += [arg] + rest
            break
        expanded += _expand(arg, None, ())
    return expanded


def parse(argv):
    """absl's flag parsing of the expanded argv; a bad flag or flagfile exits with its message."""
    try:
        return flags.FLAGS(expand_flagfiles(argv))
    except flags.Error as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\nPass --helpshort or --helpfull to see help on flags.\n")
        sys.exit(1)


def run(main):
    app.run(main, flags_parser=parse)
