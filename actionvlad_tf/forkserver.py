"""Steps run in processes forked from a server that has imported TensorFlow once.

A demo step is an entry point run as its own process (`python -m actionvlad_tf.commands <command>
…`), and each such process spends about 9 CPU-seconds importing TensorFlow and Keras before it does
anything: a third of a short evaluation step, several minutes over the demo's ~35 steps on 2 cores.
`ForkServers(n)` is a `Workflow` executor that instead keeps `n` servers (one per step run side by
side), each of which has imported TensorFlow, Keras and the package but created no TensorFlow
runtime (no eager context, no thread pool), and runs each step in a child forked from it: the child
takes the step's environment (so `TF_NUM_INTRAOP_THREADS` and the like are read when the child first
creates the runtime), working directory and log file, runs the command as `actionvlad` would, and its
exit status is the step's. A step therefore runs exactly as in its own process, less the import.

Native libraries that the server loaded (OpenBLAS, scikit-learn's OpenMP) sized their thread pools
from the server's environment when they loaded, before any step's `OMP_NUM_THREADS` existed; the
child resizes them from its own environment (`limit_native_threads`), as a fresh process would
read it. Without that, a step given one thread ran k-means on two spinning OpenMP threads: on 2
busy cores 32.7 s instead of 10.4 (the demo's k-means on 10 800 descriptors, AMD EPYC, AVX2).

Protocol (one JSON line each way per step): the client writes {"argv", "env", "cwd", "log"}, the
server forks, waits for the child and answers {"code"}. The server's own stdout is the protocol
channel only (the children write to their logs); it exits when its stdin closes. Where `os.fork` is
missing (Windows), `demo.make_workflow` keeps the `Workflow`'s plain subprocesses.
"""

import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import traceback
import weakref

from actionvlad_tf import commands

PRELOAD = ("tensorflow", "keras", "actionvlad_tf.commands")
# Where a fresh process's native thread pools read their size: threadpoolctl's API → variables, first set wins.
THREAD_VARIABLES = {
    "openmp": ("OMP_NUM_THREADS",),
    "blas": ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
}


def limit_native_threads(environ):
    """Sizes the loaded OpenMP and BLAS thread pools as `environ` would size them in a new process.

    Returns {api: threads} for the pools it set (an API whose variables are unset or not a positive
    integer keeps its size, as a new process would take its default). Needs threadpoolctl
    (scikit-learn's dependency); without it nothing changes. A pool that threadpoolctl cannot resize
    keeps its size, with a warning on stderr (the step's log): the step still runs, only slower.
    """
    try:
        import threadpoolctl
    except ImportError:
        return {}
    applied = {}
    for api, names in THREAD_VARIABLES.items():
        value = next((environ[name] for name in names if environ.get(name, "").strip()), "")
        first = value.split(",")[0].strip()  # OMP_NUM_THREADS may list nested levels: "4,2"
        if first.isdigit() and int(first) > 0:
            try:
                threadpoolctl.threadpool_limits(int(first), user_api=api)
            except Exception as error:  # noqa: BLE001 — a pool's size is not worth failing the step for
                reason = f"{type(error).__name__}: {error}"
                print(f"warning: the {api} thread pools keep their size ({reason})", file=sys.stderr)
                continue
            applied[api] = int(first)
    return applied


def _run_child(request):
    """In the forked child: the step's environment, directory and log, then the command; never returns."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["env"])
        limit_native_threads(os.environ)
        os.chdir(request["cwd"] or os.getcwd())
        try:
            code = commands.main(request["argv"])
        except SystemExit as exit_:  # absl's app.run ends every entry point this way
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
    except BaseException:  # noqa: BLE001 — the child reports whatever ends it, in its log
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


def serve(preload=PRELOAD):
    """The server loop (`python -m actionvlad_tf.forkserver [module ...]`)."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by mistake goes to stderr, never into the protocol
    for module in preload:
        importlib.import_module(module)
    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            channel.close()
            _run_child(request)
        _, status = os.waitpid(pid, 0)
        channel.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")


class ForkServers:
    """A `Workflow` executor (module docstring): `count` servers, started on first use; `program`
    is the argv prefix that the workflow's commands start with (`[python, -m, actionvlad_tf.commands]`),
    stripped before the command runs in a child; `cwd` the steps' working directory (None: this
    process's); `environment` is added to the servers' own."""

    def __init__(self, count, program, cwd=None, environment=None, preload=PRELOAD):
        self.count, self.program, self.preload = max(1, int(count)), list(program), tuple(preload)
        self.cwd = cwd
        self.environment = dict(environment or {})
        self._free = queue.Queue()
        self._servers = []
        self._ready = set()
        self._lock = threading.Lock()
        weakref.finalize(self, ForkServers._stop, self._servers)

    def _launch(self):
        env = dict(os.environ, **self.environment)
        return subprocess.Popen(
            [sys.executable, "-m", __name__, *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )

    def _acquire(self):
        """A free server; the first call starts all `count` of them at once, so that their imports
        overlap (and overlap the first steps, which run one at a time in the demo) rather than the
        second one importing TensorFlow when a second step first runs beside another."""
        with self._lock:
            if not self._servers:
                for _ in range(self.count):
                    server = self._launch()
                    self._servers.append(server)
                    self._free.put(server)
        server = self._free.get()
        if server not in self._ready:
            if not server.stdout.readline():
                self._free.put(server)
                raise RuntimeError(f"the fork server did not start (exit {server.wait()}); see the messages above")
            self._ready.add(server)
        return server

    def __call__(self, step, command, log_path, env):
        if command[: len(self.program)] != self.program:
            raise ValueError(f"{command[:3]}… does not start with the fork servers' program {self.program}")
        server = self._acquire()
        try:
            request = {"argv": command[len(self.program) :], "env": env, "cwd": self.cwd, "log": log_path}
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            reply = server.stdout.readline()
            if not reply:
                raise RuntimeError(f"the fork server running {log_path} stopped (exit {server.wait()})")
            return int(json.loads(reply)["code"])
        finally:
            self._free.put(server)

    def close(self):
        ForkServers._stop(self._servers)

    @staticmethod
    def _stop(servers):
        for server in servers:
            if server.poll() is None:
                server.stdin.close()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
        servers.clear()


if __name__ == "__main__":
    serve(tuple(sys.argv[1:]) or PRELOAD)
