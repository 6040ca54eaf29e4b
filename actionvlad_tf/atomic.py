"""Atomic file output: a file others trust appears complete or not at all (house rule, WORKSPACE.md)."""
import contextlib
import os
import pathlib
import secrets


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`; moves it onto `path` only if the block succeeds.

    The temporary file lives in the same directory (so `os.replace` is an atomic rename) and is
    removed if the block raises, leaving any previous `path` untouched. Write to the yielded path with
    an explicit format (`np.save` to an open handle, `savefig(..., format="png")`): its suffix is `.tmp`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open honours the umask (mkstemp would leave 0600), so the result has the usual permissions.
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield str(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
