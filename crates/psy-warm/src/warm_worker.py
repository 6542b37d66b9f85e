"""psy-warm's worker: collect a pytest suite once, then fork one child per test.

Started by psy (`python -c <this file> <pytest args...>`) in the project's directory. pytest sets the
session up and collects in this process; this plugin's `pytest_runtestloop` then takes over the loop
and serves JSON-line requests on the worker's original stdin, answering on its original stdout.
pytest's own terminal output goes to the worker's stderr. See docs/warm-starts.md for the protocol.

Each request forks a child that enters the sandbox (`enter_sandbox`, the one hook point), takes the
test's log files as fds 1 and 2, runs exactly one item through pytest's own protocol
(`pytest_runtest_protocol(item, nextitem=None)`, whose default runs `runtestprotocol`: setup, call,
teardown, reports; fixtures of every scope are set up and torn down in the child), writes its result as JSON and leaves with `os._exit`. The parent
only forks, waits (through a pidfd) and reports how each child ended: nothing a child does runs in it.
"""

import gc
import json
import os
import selectors
import signal
import sys
import threading
import traceback
import warnings

import pytest
from _pytest.reports import TestReport

PROTOCOL = 1

# A child that failed before or around pytest's protocol (not a test failure): the exit status
# psy sees when the child could not write its result.
CHILD_BROKEN = 70

# pytest's exit status when interrupted (`pytest.exit()` without a return code, Ctrl-C).
INTERRUPTED = 2


def enter_sandbox(entry, pidfd, keep):
    """The sandbox entry hook: called in the forked child before anything of the test runs.

    `entry` is the request's `entry` object. `{"kind": "none"}` (or no entry) runs the test where
    the worker runs: no isolation. `{"kind": "join", ...}` joins the container psy holds for the
    test (`join` in the sandbox entry above; it may fork once more): only the process that
    returns from this function runs the test. Descriptors in `keep` stay open.
    """
    kind = entry_kind(entry)
    if kind == "join":
        join(entry, pidfd, keep)
    elif kind != "none":
        raise RuntimeError(f"unknown sandbox entry kind {kind!r} (this worker knows 'none' and 'join')")


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def send(fd, message):
    write_all(fd, (json.dumps(message) + "\n").encode())


def imported_sources(root):
    """The source files under `root` that this interpreter imported, with their mtimes."""
    prefix = os.path.join(root, "")
    seen = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        if not path.startswith(prefix) or path in seen:
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        seen[path] = {"path": path, "mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
    return [seen[path] for path in sorted(seen)]


def thread_names():
    return [thread.name for thread in threading.enumerate()]


class Child:
    """What the parent keeps of a running child."""

    def __init__(self, pid, pidfd, nodeid):
        self.pid = pid
        self.pidfd = pidfd
        self.nodeid = nodeid


class WarmPlugin:
    def __init__(self, proto_in, proto_out):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.served = False
        self.selector = None
        self.children = {}
        self.items = {}
        self.handlers = {}
        self.capman = None
        self.collect_errors = []
        # In a child: the reports pytest logs for its item.
        self.reports = None

    def pytest_runtest_logreport(self, report):
        if self.reports is not None:
            self.reports.append(report)

    def pytest_collectreport(self, report):
        if report.failed:
            lines = str(report.longrepr).strip().splitlines()
            self.collect_errors.append(f"{report.nodeid or '.'}: {lines[-1] if lines else 'failed'}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        self.served = True
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            count = session.testsfailed
            errors = "; ".join(self.collect_errors)
            send(self.proto_out, {"error": f"{count} error{'s' if count != 1 else ''} during collection: {errors}"})
            return True
        # pytest keeps fds 1 and 2 redirected to its temporary files between phases; each child
        # starts capturing anew on its own log files, so no two children share a capture file.
        self.capman = session.config.pluginmanager.getplugin("capturemanager")
        if self.capman is not None:
            self.capman.stop_global_capturing()
        self.items = {item.nodeid: item for item in session.items}
        self.handlers = {sig: signal.getsignal(sig) for sig in signal.valid_signals()}
        send(self.proto_out, {"ready": {
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "items": [item.nodeid for item in session.items],
            "sources": imported_sources(str(session.config.rootpath)),
            "threads": thread_names(),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
        }})
        # Objects of the collected session stay out of the children's collections: a collection
        # in a child then writes to fewer of the parent's pages (copy-on-write stays shared).
        gc.freeze()
        self.serve()
        return True

    def serve(self):
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proto_in, selectors.EVENT_READ, None)
        pending = b""
        try:
            while True:
                for key, _ in self.selector.select():
                    if key.data is not None:
                        self.exited(key.data)
                        continue
                    chunk = os.read(self.proto_in, 1 << 16)
                    if not chunk:
                        return
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if line.strip() and not self.handle(line):
                            return
        finally:
            self.stop()

    def handle(self, line):
        """Answers one request; False when the driver asks the worker to stop."""
        try:
            request = json.loads(line)
        except ValueError as error:
            send(self.proto_out, {"refused": None, "reason": f"not JSON: {error}"})
            return True
        if not isinstance(request, dict):
            send(self.proto_out, {"refused": None, "reason": "not a JSON object"})
            return True
        if request.get("quit"):
            return False
        if "reap" in request:
            self.reap(request["reap"])
        elif "kill" in request:
            self.kill(request["kill"])
        else:
            self.start(request)
        return True

    def start(self, request):
        nodeid = request.get("run")
        item = self.items.get(nodeid)
        if item is None:
            send(self.proto_out, {"refused": nodeid, "reason": "not a collected node id"})
            return
        fds = []
        try:
            for key in ("stdout", "stderr", "result"):
                fds.append(os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644))
        except (KeyError, OSError) as error:
            for fd in fds:
                os.close(fd)
            send(self.proto_out, {"refused": nodeid, "reason": f"cannot open its files: {error!r}"})
            return
        entry = request.get("entry")
        pidfd = None
        if entry_kind(entry) == "join":
            try:
                pidfd = prepare_join(entry)
            except (KeyError, ValueError, OSError) as error:
                for fd in fds:
                    os.close(fd)
                send(self.proto_out, {"refused": nodeid, "reason": f"cannot reach its container: {error!r}"})
                return
        threads = thread_names()
        sys.stdout.flush()
        sys.stderr.flush()
        # Python 3.12 warns about forking a threaded process; the child reports threads itself.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                pid = os.fork() if pidfd is None else fork_into(entry, pidfd, os.fork)
            except OSError as error:
                for fd in fds + ([pidfd] if pidfd is not None else []):
                    os.close(fd)
                send(self.proto_out, {"refused": nodeid, "reason": f"cannot fork into its container: {error!r}"})
                return
        if pid == 0:
            code = CHILD_BROKEN
            try:
                code = self.child(item, request, fds, threads, pidfd)
            except (KeyboardInterrupt, pytest.exit.Exception) as stop:
                # As plain pytest ends on `pytest.exit()` or an interrupt (status 2 by default).
                code = getattr(stop, "returncode", None)
                code = INTERRUPTED if code is None else int(code)
            except BaseException:
                try:
                    os.write(2, traceback.format_exc().encode(errors="replace"))
                except BaseException:
                    pass
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        if pidfd is not None:
            os.close(pidfd)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = Child(pid, pidfd, nodeid)
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        send(self.proto_out, {"started": nodeid, "pid": pid})

    def exited(self, pid):
        """A child ended: report how, but keep it a zombie (its pid stays taken) until the driver,
        which may hold a pidfd of its own, says `reap`."""
        child = self.children[pid]
        self.selector.unregister(child.pidfd)
        info = os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED | os.WNOWAIT)
        if info.si_code == os.CLD_EXITED:
            how = {"code": info.si_status}
        else:
            how = {"signal": info.si_status}
        send(self.proto_out, {"exited": pid, "nodeid": child.nodeid, **how})

    def reap(self, pid):
        child = self.children.pop(pid, None)
        if child is None:
            return
        os.waitpid(pid, 0)
        os.close(child.pidfd)

    def kill(self, pid):
        child = self.children.get(pid)
        if child is not None:
            try:
                signal.pidfd_send_signal(child.pidfd, signal.SIGKILL)
            except OSError:
                pass

    def stop(self):
        """The driver left or asked to stop: no child outlives the worker's loop."""
        for pid in list(self.children):
            self.kill(pid)
            self.reap(pid)
        self.selector.close()

    def child(self, item, request, fds, threads, init_pidfd):
        """The forked child: enter, redirect, run one item, write the result. Never returns to serve."""
        os.close(self.proto_in)
        os.close(self.proto_out)
        for child in self.children.values():
            os.close(child.pidfd)
        self.selector.close()
        stdout, stderr, result = fds
        try:
            enter_sandbox(request.get("entry"), init_pidfd, fds)
        except BaseException:
            # Into the test's stderr log: the worker's stderr is no place for one test's failure.
            write_all(stderr, traceback.format_exc().encode(errors="replace"))
            raise
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.close(stdout)
        os.close(stderr)
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        if request.get("test_id") is not None:
            env["PSY_TEST_ID"] = str(request["test_id"])
        if request.get("attempt") is not None:
            env["PSY_ATTEMPT"] = str(request["attempt"])
        if entry_kind(request.get("entry")) == "join":
            # A sandboxed test gets exactly its environment, as a cold container's test does.
            os.environ.clear()
        os.environ.update(env)
        for sig, handler in self.handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        import faulthandler

        if faulthandler.is_enabled():
            # A dup of the log, as pytest's faulthandler plugin keeps one of stderr: fd 2 itself
            # is pytest's capture file while a phase runs, and lost when the process crashes.
            faulthandler.enable(file=os.dup(2))
        notes = []
        if len(threads) > 1:
            notes.append(
                f"{len(threads)} threads were running in the warm parent when it forked "
                f"({', '.join(threads)}): only the forking thread exists in the test, and locks the "
                "others held stay locked (start threads in fixtures, not at import time)"
            )
        if self.capman is not None:
            self.capman.start_global_capturing()
            self.capman.suspend_global_capture()
        # The whole protocol hook, as pytest's own loop calls it: the warnings plugin's filters,
        # log start and finish, and plugins wrapping it (timeouts, reruns) take part; the default
        # implementation runs `runtestprotocol(item, nextitem=None)`.
        self.reports = []
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
        # Subtests' reports (subclasses) only decide through the item's own call report.
        reports = [report for report in self.reports if type(report) is TestReport]
        if self.capman is not None:
            self.capman.stop_global_capturing()
        sys.stdout.flush()
        sys.stderr.flush()
        outcome, failed, phases = summarise(item, reports)
        write_logs(item.nodeid, reports)
        data = json.dumps({
            "nodeid": item.nodeid,
            "outcome": outcome,
            "phases": phases,
            "warnings": notes,
        }).encode()
        write_all(result, data)
        os.close(result)
        return 1 if failed else 0


def summarise(item, reports):
    """The test's outcome as pytest's terminal counts it, and each phase."""
    phases = []
    categories = []
    failed = False
    for report in reports:
        category = item.config.hook.pytest_report_teststatus(report=report, config=item.config)[0]
        categories.append(category)
        # As pytest's session counts a failure (its exit status 1).
        if report.failed and not hasattr(report, "wasxfail"):
            failed = True
        if isinstance(report.longrepr, tuple):
            # A skip: (path, line, "Skipped: reason"); the reason alone, as in pytest's JUnit XML.
            text = report.longrepr[2].removeprefix("Skipped: ")
        else:
            text = report.longreprtext
        phases.append({
            "when": report.when,
            "outcome": report.outcome,
            "category": category,
            "duration": report.duration,
            "longrepr": text or None,
            "wasxfail": getattr(report, "wasxfail", None),
        })
    for category in ("failed", "error", "skipped", "xfailed", "xpassed", "passed"):
        if category in categories:
            return category, failed, phases
    other = [category for category in categories if category]
    return (other[0] if other else "passed"), failed, phases


def write_logs(nodeid, reports):
    """What pytest captured goes to the test's log files; failure texts follow on stdout."""
    # Ends the line of pytest's progress letter.
    write_all(1, b"\n")
    seen = set()
    for report in reports:
        for title, content in report.sections:
            if title in seen or not title.startswith("Captured "):
                continue
            seen.add(title)
            write_all(1 if " stdout " in title else 2, content.encode(errors="replace"))
    for report in reports:
        if report.failed:
            header = f"\n{'_' * 20} {nodeid} ({report.when}) {'_' * 20}\n"
            write_all(1, (header + report.longreprtext + "\n").encode(errors="replace"))


def main(argv):
    # The protocol keeps the original stdin/stdout; pytest's own output goes to stderr.
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    if not all(hasattr(os, name) for name in ("fork", "pidfd_open", "P_PIDFD")):
        send(proto_out, {"error": (
            f"Python {sys.version.split()[0]} on {sys.platform} cannot fork and watch children "
            "through pidfds (Python 3.9+ on Linux 5.4+ can)"
        )})
        return 0
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    plugin = WarmPlugin(proto_in, proto_out)
    code = pytest.main(argv, plugins=[plugin])
    if not plugin.served:
        send(proto_out, {"error": (
            f"pytest stopped with exit status {int(code)} before running tests "
            "(its output is on the worker's stderr)"
        )})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
