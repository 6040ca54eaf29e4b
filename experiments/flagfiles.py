"""Flagfiles whose includes resolve relative to the flagfile itself, so a run works from any folder.

absl reads `--flagfile=PATH` relative to the working directory, also inside a flagfile; here an
included path is looked up beside the including file first (experiments/configs includes its
partials as `--flagfile=_hmdb51.flags`), then in the working directory (older flagfiles that
include `experiments/configs/...` from the repository root). A flagfile named on the command line is
relative to the working directory, as usual.

The shipped flagfiles (`experiments/configs/`, installed with the package: `actionvlad_tf.commands`)
work from any folder and after a non-editable install: a path that is not found as above and is a
bare name (`--flagfile=hmdb51_rgb_split1_stage1.flags`) or is written from the repository root
(`--flagfile=experiments/configs/hmdb51_rgb_split1_stage1.flags`, as the flagfiles' headers write
it) is the shipped copy, the one beside this module. A path that exists is never redirected. The
other paths a flagfile holds (data, runs) stay relative to the working directory.

Entry points run `flagfiles.run(main)` instead of `app.run(main)`.
"""

import os
import re
import sys

from absl import app, flags

_FLAGFILE = re.compile(r"^--?flagfile=(.*)$")
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_FROM_THE_ROOT = os.path.join("experiments", "configs", "")


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [(number, line.strip()) for number, line in enumerate(f, start=1)]


def _shipped(value):
    """The shipped copy a relative `value` names (a bare name, or experiments/configs/NAME), else None."""
    name = value[len(_FROM_THE_ROOT) :] if value.startswith(_FROM_THE_ROOT) else value
    return None if os.path.isabs(value) or os.path.dirname(name) else os.path.join(SHIPPED, name)


def _include(value, including):
    """The path of an include `value` in the flagfile `including` (None: on the command line)."""
    value = os.path.expanduser(value)
    candidates = (
        [value]
        if os.path.isabs(value) or including is None
        else [os.path.join(os.path.dirname(including), value), value]
    )
    shipped = _shipped(value)
    if shipped and shipped not in candidates:
        candidates.append(shipped)
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
