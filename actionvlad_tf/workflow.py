"""A small make for entry points: steps keyed by what they depend on, run in subprocesses.

Each `Step` runs one entry point by its command name (`<program> <command> --flag=value ...`, the
program being e.g. the `actionvlad` launcher, `actionvlad_tf.commands`) and declares the steps whose
outputs it reads (`deps`), the files from outside it reads (`inputs`) and the paths it writes
(`outputs`). Its key hashes the command, its flags, the code version, its inputs' contents and its
dependencies' keys; the key is written beside the outputs (`<state_dir>/<name>.json`) when the step
succeeds. On a re-run a step runs again exactly when its key changed (or its outputs are gone), and
then its old outputs are removed first, so a training folder never resumes from a checkpoint made
with other flags; a step that was interrupted with the same key keeps its partial outputs and
resumes. Independent steps can run side by side (`jobs`), each with its share of the cores, and the
console shows one line per step with its own progress (the last line its process printed).

Why not `doit` (the Python make): its `config_changed`, `result_dep` and `-n 2` express the keys,
the dependencies and two steps at a time, but it records only that a task succeeded, so a step
interrupted with an unchanged key could not be told from one whose key changed (one must resume its
outputs, the other remove them first) without keeping these keys beside it anyway. And its
reporters hear a task start and end, not the lines a running subprocess prints, so two steps side
by side could not each show a live progress line; both would take as much code as this module.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time

from actionvlad_tf.atomic import atomic_output

PROGRESS_EVERY_S = 20.0


@dataclasses.dataclass(frozen=True)
class Step:
    """One entry-point run. `entry`: its command, the argument of the workflow's program (e.g.
    "train"); `flags`: {name: value} passed as --name=value; `deps`: names of the steps whose
    outputs it reads (part of its key); `after`: steps it only waits for (not part of its key: e.g.
    not to share a cache with them at the same time); `inputs`: files it reads that no step makes
    (hashed by content); `outputs`: paths it writes (checked after it runs, removed before it re-runs
    with a new key)."""

    name: str
    entry: str
    flags: dict = dataclasses.field(default_factory=dict)
    deps: tuple = ()
    after: tuple = ()
    inputs: tuple = ()
    outputs: tuple = ()
    cost: float = 1.0

    def command(self, program):
        """The argv that runs the step: `program` (a list) + its entry + its flags."""
        return list(program) + [self.entry] + [f"--{name}={value}" for name, value in self.flags.items()]


def file_digest(path, chunk=1 << 20):
    """sha256 of a file's bytes (or of the sorted relative paths and digests of a folder's files)."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for folder, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                full = os.path.join(folder, name)
                digest.update(os.path.relpath(full, path).encode())
                digest.update(file_digest(full).encode())
        return digest.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version(*folders, suffixes=(".py",)):
    """A digest of the source files under `folders`: any change of the code changes every key. A
    folder nested in another one given is hashed once, as its own (so the same files give the same
    digest whether `b` lies inside `a` or beside it)."""
    digest = hashlib.sha256()
    tops = {os.path.abspath(top) for top in folders}
    for top in folders:
        for folder, dirs, files in os.walk(top):  # top-down in sorted order; pruned in place
            dirs[:] = sorted(
                d
                for d in dirs
                if d != "__pycache__" and not d.startswith(".") and os.path.abspath(os.path.join(folder, d)) not in tops
            )
            for name in sorted(files):
                if name.endswith(suffixes):
                    full = os.path.join(folder, name)
                    digest.update(os.path.relpath(full, top).encode())
                    digest.update(file_digest(full).encode())
    return digest.hexdigest()[:16]


class StepFailed(RuntimeError):
    pass


class Workflow:
    """Runs `steps` (a list of `Step`, dependencies first or not), each as `program` (a list: the
    argv that runs an entry point given its command) + the step's entry and flags.

    shown: the program as the progress lines show it (default: its argv); cwd: the steps' working
    directory (default: this process's); state_dir: where each step's key and seconds are written;
    log_dir: one log per step;
    version: the code version in every key; jobs: steps run side by side; threads: TensorFlow
    threads per step (default: the cores divided by `jobs`); echo: where progress lines go;
    execute: callable(step, command, log_path, env) -> exit code (default: a subprocess), replaceable
    in tests."""

    def __init__(
        self,
        steps,
        program,
        state_dir,
        log_dir,
        version="",
        jobs=1,
        threads=None,
        echo=print,
        execute=None,
        environment=None,
        shown=None,
        cwd=None,
    ):
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in {names}")
        self.steps = {step.name: step for step in steps}
        for step in steps:
            missing = [dep for dep in step.deps + step.after if dep not in self.steps]
            if missing:
                raise ValueError(f"step {step.name} depends on unknown steps {missing}")
        self.order = self._topological(steps)
        self.priorities = self._priorities()
        self.program, self.cwd, self.state_dir, self.log_dir = list(program), cwd, state_dir, log_dir
        self.shown = shown or " ".join(self.program)
        self.version, self.jobs = version, max(1, int(jobs))
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.jobs)
        self.echo = echo
        self.execute = execute or self._subprocess
        self.environment = dict(environment or {})
        self.seconds = {}
        self.ran = []
        self._keys = {}
        self._lock = threading.Lock()
        self._running = {}

    # --- keys ------------------------------------------------------------------------------------
    def _topological(self, steps):
        order, seen, visiting = [], set(), set()

        def visit(name):
            if name in seen:
                return
            if name in visiting:
                raise ValueError(f"dependency cycle through step {name}")
            visiting.add(name)
            for dep in self.steps[name].deps + self.steps[name].after:
                visit(dep)
            visiting.discard(name)
            seen.add(name)
            order.append(name)

        for step in steps:
            visit(step.name)
        return order

    def _priorities(self):
        """{step: its cost plus the longest chain of costs of the steps that wait on it}: of the
        steps ready at one time the one with the most work still behind it starts first (list
        scheduling by critical path), so that the longest chain is not left waiting behind short ones."""
        waiting = {name: [] for name in self.order}
        for name in self.order:
            for dep in self.steps[name].deps + self.steps[name].after:
                waiting[dep].append(name)
        priorities = {}
        for name in reversed(self.order):
            priorities[name] = self.steps[name].cost + max((priorities[w] for w in waiting[name]), default=0.0)
        return priorities

    def key(self, name):
        """The step's key (sha256 hex) from its entry, flags, the code version, its input files'
        contents and its dependencies' keys."""
        if name not in self._keys:
            step = self.steps[name]
            payload = {
                "entry": step.entry,
                "flags": {k: str(v) for k, v in sorted(step.flags.items())},
                "version": self.version,
                "deps": {dep: self.key(dep) for dep in sorted(step.deps)},
                "inputs": {os.path.basename(p): (file_digest(p) if os.path.exists(p) else None) for p in step.inputs},
            }
            self._keys[name] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return self._keys[name]

    def _state(self, name, kind):
        return os.path.join(self.state_dir, f"{name}.{kind}.json")

    def _read_state(self, name, kind):
        try:
            with open(self._state(name, kind), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _write_state(self, name, kind, payload):
        with atomic_output(self._state(name, kind)) as temporary:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump(payload, f, indent=1)

    def is_done(self, name):
        """Whether the step's outputs are there and were made with its current key."""
        state = self._read_state(name, "done")
        return (
            bool(state)
            and state.get("key") == self.key(name)
            and all(os.path.exists(path) for path in self.steps[name].outputs)
        )

    def recorded_seconds(self):
        """{step: seconds its last successful run took (None if it never finished)}, in order."""
        return {name: (self._read_state(name, "done") or {}).get("seconds") for name in self.order}

    def pending(self):
        """Names of the steps that would run now, in order."""
        return [name for name in self.order if not self.is_done(name)]

    # --- running ---------------------------------------------------------------------------------
    def _prepare(self, name):
        """Before a step runs: keep the outputs of an interrupted run with the same key (it
        resumes), otherwise remove them."""
        step = self.steps[name]
        started = self._read_state(name, "started")
        done = self._read_state(name, "done")
        resumable = started is not None and started.get("key") == self.key(name)
        if not resumable or (done is not None and done.get("key") != self.key(name)):
            for path in step.outputs:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)
        self._write_state(name, "started", {"key": self.key(name), "time": time.time()})

    def _subprocess(self, step, command, log_path, env):
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd)

    def _run_one(self, name):
        step = self.steps[name]
        self._prepare(name)
        os.makedirs(self.log_dir, exist_ok=True)
        log_path = os.path.join(self.log_dir, f"{name}.log")
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_NUM_INTRAOP_THREADS=str(self.threads),
            TF_NUM_INTEROP_THREADS=str(min(2, self.threads)),
            OMP_NUM_THREADS=str(self.threads),
            **self.environment,
        )
        command = step.command(self.program)
        self.echo(f"[run ] {name}: {self.shown} {' '.join(command[len(self.program) :])}")
        start = time.time()
        with self._lock:
            self._running[name] = (log_path, start)
        try:
            code = self.execute(step, command, log_path, env)
        finally:
            with self._lock:
                self._running.pop(name, None)
        seconds = round(time.time() - start, 1)
        if code != 0:
            raise StepFailed(
                f"step {name} failed (exit {code}) after {seconds} s; log {log_path}:\n{last_lines(log_path, 40)}"
            )
        missing = [path for path in step.outputs if not os.path.exists(path)]
        if missing:
            raise StepFailed(f"step {name} exited 0 but did not write {missing}; log {log_path}")
        self._write_state(name, "done", {"key": self.key(name), "seconds": seconds, "time": time.time()})
        with self._lock:
            self.seconds[name] = seconds
            self.ran.append(name)
        self.echo(f"[done] {name}: {seconds:.1f} s — {progress_line(log_path)}")

    def _report_progress(self, stop):
        shown = {}
        while not stop.wait(PROGRESS_EVERY_S):
            with self._lock:
                running = dict(self._running)
            for name, (log_path, start) in running.items():
                line = progress_line(log_path)
                if line and shown.get(name) != line:
                    shown[name] = line
                    self.echo(f"[....] {name}: {time.time() - start:.0f} s — {line}")

    def run(self):
        """Runs every pending step (dependencies first, `jobs` at a time, the ready step with the
        highest `priorities` first); returns the names run.
        The first failure stops the workflow after the running steps end, and is raised."""
        pending = self.pending()
        for name in self.order:
            if name not in pending:
                self.echo(f"[skip] {name}: done with the same key")
        remaining = list(pending)
        done = set(self.order) - set(pending)
        stop = threading.Event()
        reporter = threading.Thread(target=self._report_progress, args=(stop,), daemon=True)
        reporter.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
                futures = {}
                while remaining or futures:
                    ready = [n for n in remaining if all(d in done for d in self.steps[n].deps + self.steps[n].after)]
                    ready.sort(key=lambda n: -self.priorities[n])  # stable: ties keep the plan's order
                    for name in ready[: self.jobs - len(futures)]:
                        remaining.remove(name)
                        futures[pool.submit(self._run_one, name)] = name
                    if not futures:
                        raise StepFailed(f"steps {remaining} wait on steps that did not run")
                    finished, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in finished:
                        name = futures.pop(future)
                        error = future.exception()
                        if error is not None:
                            remaining.clear()
                            concurrent.futures.wait(futures)
                            raise error
                        done.add(name)
        finally:
            stop.set()
        return list(self.ran)


def last_lines(path, count, quiet=False):
    """The last `count` lines of a log; with `quiet`, leaving out log records and TensorFlow's
    start-up notices (`_NOISE`), as the console shows a step's output."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().replace("\r", "\n").splitlines()
    except OSError:
        return ""
    if quiet:
        lines = [line for line in lines if not _NOISE.match(line.strip())]
    return "\n".join(lines[-count:])


# Log lines that say nothing of progress: absl/glog-style records ("I1202 13:35:36.9 …") and the
# notices every TensorFlow process prints as it starts.
_NOISE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|To enable the following instructions)")


def progress_line(path, width=110):
    """The last non-empty line a step printed (tqdm's bars end in carriage returns), leaving out
    log records and TensorFlow's start-up notices."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [
        line.strip()
        for line in tail.replace("\r", "\n").splitlines()
        if line.strip() and not _NOISE.match(line.strip())
    ]
    line = lines[-1] if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"
