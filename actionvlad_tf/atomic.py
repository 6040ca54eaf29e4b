"""Atomic file output: a file others trust appears complete or not at all (house rule, WORKSPACE.md)."""

import contextlib
import json
import math
import os
import pathlib
import secrets
import tempfile

import numpy as np


@contextlib.contextmanager
def naming_os_errors(path):
    """Raises an OSError that names no file again, naming `path`: a failed write() (full disk,
    quota) says only "No space left on device"."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`; moves it onto `path` only if the block succeeds.

    The temporary file lives in the same directory (so `os.replace` is an atomic rename) and is
    removed if the block raises, leaving any previous `path` untouched; an OSError that names no
    file (a full disk) is raised again naming `path`. Write to the yielded path with
    an explicit format (`np.save` to an open handle, `savefig(..., format="png")`): its suffix is `.tmp`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open honours the umask (mkstemp would leave 0600), so the result has the usual permissions.
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        with naming_os_errors(path):
            yield str(temporary)
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def ensure_writable_dir(path, what="output folder"):
    """Creates the folder `path` if needed and proves it writable with a probe file, so that an
    unwritable output (read-only, under a regular file, quota) fails before any work, not at the
    first save hours later. Returns `path`; raises the OSError's own type with a message naming
    `what` and the path."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise type(error)(
            f"{what} {os.fspath(path)} is not writable: {error.strerror or error} (checked before any work)"
        ) from error
    return path


@contextlib.contextmanager
def atomic_keras_output(path, suffixes=(".keras", ".weights.h5")):
    """Like `atomic_output`, for Keras's savers, which insist on the file's suffix: yields a
    temporary name in the same folder that ends like `path`."""
    path = pathlib.Path(path)
    suffix = next((s for s in suffixes if path.name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{path}: a Keras file must end in one of {suffixes}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name[: -len(suffix)]}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"
    try:
        with naming_os_errors(path):
            yield temporary
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_keras_atomic(model, path):
    """`model.save(path)` through a temporary `.keras` name in the same folder, then a rename."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"{path}: a Keras model file must end in .keras")
    with atomic_keras_output(path) as temporary:
        model.save(temporary)
    return str(path)


def _jsonable(value):
    """numpy scalars/arrays -> Python; NaN/inf -> None, since JSON has no such numbers."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, payload):
    """Writes `payload` as indented JSON, atomically; NaN and inf become null."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(_jsonable(payload), handle, indent=2, allow_nan=False)
            handle.write("\n")
