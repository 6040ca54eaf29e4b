"""The `actionvlad` command: one launcher for every entry point of `experiments/` and `data_prep/`.

  actionvlad --help                                   the commands, each with its script's first docstring line
  actionvlad train --flagfile=hmdb51_rgb_split1_stage1.flags
  actionvlad extract-frames --videos=UCF-101 --output_dir=data/ucf101/frames
  python -m actionvlad_tf.commands demo --output_dir=demo_out     (the same, without the console script)

A command is a script's file name with `-` for `_` (`extract_frames.py` → `extract-frames`; the
underscore spelling is accepted too); a script is an entry point when it has an `if __name__ ==
"__main__":` block, so a new script in either folder is a command with no other edit, and the
helpers beside them (`common_flags.py`, `flagfiles.py`, ...) are not. The script runs as
`python <script>` would run it: as `__main__`, with its folder first on `sys.path` (the scripts
import their siblings: `import common_flags`), `sys.argv[0]` its path; its flags are unchanged.

Where the scripts live: the folders stay at the top of the source tree (the layout the design card
fixes), and `setup.py` maps them into this package with setuptools `package_dir`, as
`actionvlad_tf/experiments/` and `actionvlad_tf/data_prep/`, flagfiles included. Why that way: package
data cannot name files outside the package's folder, and moving the scripts in would change the layout;
mapped, they are found beside this module whatever the working directory, nothing generic
(`experiments`, `data_prep`) becomes a top-level package, and as folders without `__init__.py` they
stay scripts to run, not modules to import (they import their siblings as top-level names, which only
their folder on `sys.path` provides). In the source tree itself (a checkout on `PYTHONPATH`, or an
editable install) they are the folders beside the package.
"""

import ast
import difflib
import os
import re
import runpy
import sys

PACKAGE = os.path.dirname(os.path.abspath(__file__))
SCRIPT_FOLDERS = ("experiments", "data_prep")  # setup.py installs each as actionvlad_tf/<folder>
MODULE = "actionvlad_tf.commands"  # `python -m MODULE <command> [flags]` runs what `actionvlad` runs
_ENTRY_POINT = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)


def source_root():
    """The source tree's root when the scripts are the folders beside the package (a checkout or an
    editable install), else None (an installation: the scripts are inside the package)."""
    if all(os.path.isdir(os.path.join(PACKAGE, folder)) for folder in SCRIPT_FOLDERS):
        return None
    return os.path.dirname(PACKAGE)


def script_folders():
    """The folders of the entry points, in SCRIPT_FOLDERS' order (see the module docstring)."""
    return tuple(os.path.join(source_root() or PACKAGE, folder) for folder in SCRIPT_FOLDERS)


def source_folders():
    """The folders whose Python files are the code that runs: the package and the script folders."""
    return (PACKAGE,) + script_folders()


def command_name(path):
    return os.path.splitext(os.path.basename(path))[0].replace("_", "-")


def scripts():
    """{command: script path} of every entry point; two scripts of one name are refused."""
    found = {}
    for folder in script_folders():
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not name.endswith(".py") or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as f:
                if not _ENTRY_POINT.search(f.read()):
                    continue
            command = command_name(path)
            if command in found:
                raise RuntimeError(
                    f"two entry points are the command {command!r}: {found[command]} and {path}; rename one"
                )
            found[command] = path
    return found


def summary(path):
    """The first line of a script's docstring, with " …" where its sentence goes on below."""
    with open(path, encoding="utf-8") as f:
        lines = (ast.get_docstring(ast.parse(f.read(), filename=path)) or "").strip().splitlines() or [""]
    goes_on = len(lines) > 1 and lines[1].strip() and not lines[0].rstrip().endswith((".", ":", "?"))
    return lines[0].rstrip() + (" …" if goes_on else "")


def usage():
    """The launcher's help: every command, by folder, with its script's first docstring line."""
    found = scripts()
    width = max(map(len, found)) + 2
    lines = ["usage: actionvlad <command> [--flag=value ...]     (actionvlad <command> --help: its flags)", ""]
    for folder in script_folders():
        lines.append(f"{os.path.basename(folder)}/:")
        lines += [
            f"  {command:<{width}}{summary(path)}" for command, path in found.items() if os.path.dirname(path) == folder
        ]
    return "\n".join(lines)


def run(command, args):
    """Runs the entry point `command` with the command-line arguments `args`, as `python <script>
    args` would (a SystemExit of the script goes through)."""
    path = scripts()[command.replace("_", "-")]
    sys.argv = [path] + list(args)
    sys.path.insert(0, os.path.dirname(path))
    runpy.run_path(path, run_name="__main__")


def main(argv=None):
    """The console script: `actionvlad <command> [flags]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command = argv[0].replace("_", "-")
    found = scripts()
    if command not in found:
        close = difflib.get_close_matches(command, found, n=3)
        sys.stderr.write(
            f"actionvlad: no command {argv[0]!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + "; `actionvlad --help` lists them\n"
        )
        return 2
    run(command, argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
