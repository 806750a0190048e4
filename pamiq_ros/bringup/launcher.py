"""Brings a deployment up without ``ros2 launch``: each node its own process, one Ctrl-C stops all.

Machines with pip-installed ROS 2 have no ``launch``/``launch_ros``; this supervisor starts the
same nodes from the same description (:mod:`pamiq_ros.bringup.description`). Each node runs in
its own process group, so stopping a node stops everything it started, and nothing is ever
stopped by name. A node that dies on its own is started again after a backoff
(:class:`RestartSchedule`), resuming from this launch's run folder, so one failure does not take
the deployment down. A node that exits 0 on its own (its control ``shutdown`` service, called by
anyone in the domain) counts as a death unless every node exits within
``stack_shutdown_window`` (``pamiq-ros shutdown``: the launch then ends with 0). On a node's first
death its newest checkpoint from before it is pinned, so a crash loop cannot prune it away.

Files: the launcher and its nodes run with umask 077 (run folder 0700, files 0600), the nodes'
ROS log files go into ``<run folder>/ros_logs``, and :class:`DiskBudget` keeps logs,
checkpoints and TensorBoard events within their budgets. Memory: before the start, after a
node's death and after the stop, the Fast DDS shared memory of dead processes is freed
(:mod:`pamiq_ros.bringup.shared_memory`; a killed node leaves a 16 MiB segment in ``/dev/shm``).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pamiq_ros.bringup import network_profiles, shared_memory
from pamiq_ros.bringup.description import (
    RESUME_PARAMETER,
    LauncherSettings,
    LaunchPlan,
    NodeLaunch,
)
from pamiq_ros.bringup.disk_budget import MIB, Budgets, DiskBudget
from pamiq_ros.bringup.security import security_environment
from pamiq_ros.core.checkpoint import (
    PRIVATE_UMASK,
    CheckpointError,
    CheckpointStore,
    latest_to_keep,
)
from pamiq_ros.nodes._shutdown import STOP_SIGNALS, StopRequest

POLL_PERIOD = 0.1
EXIT_POLL_PERIOD = 0.02
"""How often a stopping launch looks for exited nodes (each exit is timed to this)."""
HOUSEKEEPING_PERIOD_S = 10.0
"""How often the disk budgets are enforced."""
CHECKPOINT_STORE = "checkpoints"
"""A node's checkpoints are in ``<run folder>/<node>/checkpoints``."""
PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h


class RestartSchedule:
    """When to restart one node after it dies: doubling backoff, reset once stable, a limit.

    Each death asks :meth:`next_delay`. The first restart waits ``initial_delay``; each further
    one waits twice as long as the one before, up to ``max_delay``. A node that stayed up for
    ``stable_time`` before it died starts again from ``initial_delay``. A node that already
    needed ``max_restarts`` restarts within the last ``window`` seconds is not restarted again:
    it keeps failing, and restarting it forever would hide that.

    Args:
        initial_delay: Seconds before the first restart.
        max_delay: Longest delay, in seconds.
        stable_time: Uptime in seconds after which the delay goes back to ``initial_delay``.
        max_restarts: Restarts allowed within ``window``.
        window: Seconds over which restarts are counted.
    """

    def __init__(
        self,
        initial_delay: float,
        max_delay: float,
        stable_time: float,
        max_restarts: int,
        window: float,
    ) -> None:
        if not 0 < initial_delay <= max_delay:
            raise ValueError(
                f"restart delays need 0 < initial ({initial_delay}) <= max ({max_delay})"
            )
        if max_restarts < 1 or window <= 0 or stable_time <= 0:
            raise ValueError(
                f"max_restarts ({max_restarts}), window ({window}) and stable_time "
                f"({stable_time}) must be positive"
            )
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._stable_time = stable_time
        self.max_restarts = max_restarts
        self.window = window
        self._delay = initial_delay
        self._recent: deque[float] = deque()
        self.restarts = 0
        """Restarts granted so far (the number of the latest one)."""

    @classmethod
    def from_settings(cls, settings: LauncherSettings) -> "RestartSchedule":
        """The schedule a launcher's ``pamiq_launcher`` settings describe."""
        return cls(
            initial_delay=settings.restart_delay,
            max_delay=settings.restart_delay_max,
            stable_time=settings.restart_stable_time,
            max_restarts=settings.max_restarts,
            window=settings.restart_window,
        )

    def next_delay(self, died_at: float, uptime: float) -> float | None:
        """Seconds to wait before restarting a node that died, or None to give up.

        Args:
            died_at: When it died (monotonic seconds).
            uptime: How long it had been running, in seconds.
        """
        if uptime >= self._stable_time:
            self._delay = self._initial_delay
        while self._recent and self._recent[0] <= died_at - self.window:
            self._recent.popleft()
        if len(self._recent) >= self.max_restarts:
            return None
        delay = self._delay
        self._recent.append(died_at)
        self._delay = min(delay * 2.0, self._max_delay)
        self.restarts += 1
        return delay


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``, from a :class:`subprocess.Popen` return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def death_verdict(
    settings: LauncherSettings, schedule: RestartSchedule, died: str, now: float, uptime: float
) -> tuple[float | None, str]:
    """What to do about a node that died, for both launchers: restart it after a delay, or stop.

    Args:
        settings: The launcher settings (``restart`` on or off).
        schedule: The node's restart schedule (asked for the next delay).
        died: ``agent died (exit code 3) after 12.0 s``: starts the line returned.
        now: When it died (monotonic seconds).
        uptime: How long it had run, in seconds.

    Returns:
        ``(delay, line)``: restart after ``delay`` seconds; or ``(None, reason)``: the launch
        stops, for that reason.
    """
    if not settings.restart:
        return None, f"{died}; restart is off"
    delay = schedule.next_delay(now, uptime)
    if delay is None:
        return None, (
            f"{died}; giving up: it was restarted {schedule.max_restarts} times within "
            f"{schedule.window:g} s"
        )
    return delay, f"{died}; restart {schedule.restarts} in {delay:.1f} s"


def pin_last_checkpoint(run_dir: Path, name: str, say: Callable[[str], None]) -> None:
    """Pins the newest checkpoint of a node that died for the first time in this run.

    So a crash loop, writing a checkpoint at each start, cannot prune the last good one away.
    """
    store = CheckpointStore(run_dir / name / CHECKPOINT_STORE)
    keep = latest_to_keep(store)
    if keep is None:
        return
    try:
        store.pin(keep, f"last checkpoint before {name} first died")
    except (CheckpointError, OSError) as error:
        say(f"could not pin {keep}: {error}")
        return
    say(f"pinned {keep} (kept whatever keep_checkpoints says)")


@dataclass
class _Child:
    """One node of the launch: its current process and what its restarts need."""

    node: NodeLaunch
    schedule: RestartSchedule
    process: subprocess.Popen[bytes]
    started_at: float
    readers: list[threading.Thread] = field(default_factory=list)
    restart_at: float | None = None
    """When a dead node is due to start again; None while it runs or once it finished."""
    finished: bool = False
    exited_at: float | None = None
    """When it exited 0 (monotonic), while the launch waits to see if every node does."""
    restarts: int = 0


def node_command(
    node: NodeLaunch, python: str = sys.executable, parameters: Mapping[str, str] | None = None
) -> list[str]:
    """The command that runs ``node``: its module, with its ROS arguments.

    ``parameters`` (such as the run folder) override the parameter file; nodes that do not
    declare one ignore it.
    """
    return [python, "-m", node.node.module, *node.ros_arguments(parameters)]


class Launcher:
    """Starts, watches, restarts and stops the nodes of one deployment.

    Args:
        plan: This start: the nodes, their namespace and parameter file, the run folder. Every
            node's first start gets the plan's parameters (run folder, resume); a restarted
            node gets ``resume_from`` set to the run folder, so nodes with state (agent,
            trainer) come back from their newest checkpoint of this launch.
        output: Where the nodes' output goes, each line prefixed with ``[node]``.
        python: The interpreter that runs the nodes.
    """

    def __init__(
        self,
        plan: LaunchPlan,
        output: TextIO = sys.stdout,
        python: str = sys.executable,
        process_stop: StopRequest | None = None,
    ) -> None:
        """Prepares the launch of ``plan``.

        Args:
            plan: What to start, where, with which parameters.
            output: Where the launcher's and the nodes' lines go.
            python: The interpreter the nodes run in.
            process_stop: The process's stop request, for a program that ends with the launch
                (``pamiq-ros launch`` passes :data:`~pamiq_ros.nodes._shutdown.STOP`): its
                handlers stay installed until the process ends, as in every node, so a
                second Ctrl-C after the stop (a terminal's double press) cannot kill a launch
                that stopped cleanly. None: the launcher installs its own handlers for the run
                and puts the previous ones back after it (library callers).
        """
        self._plan = plan
        self._process_stop = process_stop
        # The signals that ask this launch to stop: the process's request, or (library use) one
        # of its own, whose handler is installed for the run only. Either is polled by run().
        self._stop_signals = process_stop or StopRequest()
        self._bringup = plan.bringup
        self._settings = plan.bringup.launcher
        self._parameters = plan.parameters()
        self._restart_parameters = plan.restart_parameters()
        self._output = output
        self._python = python
        self._write_lock = threading.Lock()
        self._children: list[_Child] = []
        self._stop_requested = threading.Event()
        self._stop_reason = ""
        self._run_dir = plan.run_dir
        self._pinned: set[str] = set()
        settings = self._settings
        self._budget = DiskBudget(
            self._run_dir,
            Budgets(
                logs=int(settings.log_budget_mb * MIB),
                checkpoints=int(settings.checkpoint_budget_mb * MIB),
                tensorboard=int(settings.tensorboard_budget_mb * MIB),
            ),
            self.say,
        )

    def say(self, line: str, source: str = "launch") -> None:
        """Writes one prefixed line to the output."""
        with self._write_lock:
            self._output.write(f"[{source}] {line}\n")
            self._output.flush()

    def request_stop(self, reason: str) -> None:
        """Asks :meth:`run` to stop every node; from any thread.

        Signal handlers do not call it: they only note the signal, and :meth:`run` calls it.
        """
        if not self._stop_requested.is_set():
            self._stop_reason = reason
            self._stop_requested.set()

    def run(self, duration: float | None = None) -> int:
        """Starts every node, waits for Ctrl-C, SIGTERM or ``duration`` seconds, stops them all.

        Nodes that die meanwhile are restarted (see :class:`RestartSchedule`).

        Args:
            duration: Seconds to run; None runs until Ctrl-C or SIGTERM.

        Returns:
            0 when every node ran until asked to stop and then exited cleanly, else 1 (also
            when a node died and restarts were off or used up).
        """
        restore = self._install_signal_handlers()
        started_at = time.monotonic()
        failures: list[str] = []
        previous_umask = os.umask(PRIVATE_UMASK)  # inherited by every node
        try:
            environment = self._bringup.node_environment()
            # Lines are prefixed with the node's name already; keep severity and message.
            environment.setdefault("RCUTILS_CONSOLE_OUTPUT_FORMAT", "[{severity}] {message}")
            self._budget.log_dir.mkdir(parents=True, exist_ok=True)
            environment["ROS_LOG_DIR"] = str(self._budget.log_dir)
            if self._settings.security:
                environment.update(
                    security_environment(
                        self._settings.security_keystore, self._settings.security_strategy
                    )
                )
                self.say(f"SROS2 on: keystore {self._settings.security_keystore}")
            discovery = " ".join(
                f"{k}={v}" for k, v in self._bringup.discovery_environment(environment).items()
            )
            self.say(f"config {self._bringup.config_path} ({discovery})")
            if self._bringup.uses_loopback_profile(environment):
                self.say("discovery_range LOCALHOST: every DDS socket binds to 127.0.0.1")
            if self._plan.namespace != "/":
                self.say(f"namespace {self._plan.namespace}")
            profile = self._bringup.launcher.network_profile
            self.say(network_profiles.describe(profile, environment))
            if warning := network_profiles.shell_profile_warning(os.environ, environment):
                self.say(warning)
            self._free_dead_shared_memory()  # what earlier runs that were killed left
            for node in self._plan.nodes:
                process = self._spawn(node, environment, self._parameters)
                self._children.append(
                    _Child(
                        node=node,
                        schedule=RestartSchedule.from_settings(self._settings),
                        process=process,
                        started_at=time.monotonic(),
                        readers=[self._relay_output(node.name, process)],
                    )
                )
                self.say(f"started {node.name} (pid {process.pid})")
            limit = f"for {duration:g} s" if duration else "until Ctrl-C"
            self.say(f"{len(self._children)} nodes running {limit}")
            failures = self._watch(started_at, duration, environment)
        finally:
            failures += self._stop_all()
            self._free_dead_shared_memory()  # nodes killed at the end leave theirs
            restore()
            os.umask(previous_umask)
        elapsed = time.monotonic() - started_at
        restarts = ", ".join(
            f"{child.node.name} {child.restarts}" for child in self._children if child.restarts
        )
        restarted = f" (restarts: {restarts})" if restarts else ""
        if failures:
            self.say(
                f"stopped after {elapsed:.1f} s with problems: {'; '.join(failures)}{restarted}"
            )
            return 1
        self.say(
            f"all {len(self._bringup.nodes)} nodes stopped cleanly after {elapsed:.1f} s{restarted}"
        )
        return 0

    def _spawn(
        self, node: NodeLaunch, environment: dict[str, str], parameters: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        command = node_command(node, self._python, parameters)
        if self._settings.security:
            environment = {
                **environment,
                **security_environment(
                    self._settings.security_keystore, self._settings.security_strategy, node.name
                ),
            }
        return subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_stop_with_the_launcher,
        )

    def _relay_output(self, name: str, process: subprocess.Popen[bytes]) -> threading.Thread:
        reader = threading.Thread(
            target=self._relay, args=(name, process), name=f"relay-{name}", daemon=True
        )
        reader.start()
        return reader

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.say(raw.decode(errors="replace").rstrip(), source=name)

    def _watch(
        self, started_at: float, duration: float | None, environment: dict[str, str]
    ) -> list[str]:
        next_housekeeping = time.monotonic() + HOUSEKEEPING_PERIOD_S
        window = self._settings.stack_shutdown_window
        while not self._stop_requested.wait(POLL_PERIOD):
            if self._stop_signals.requested():
                first = signal.Signals[self._stop_signals.signals[0]]
                self.request_stop(signal.strsignal(first) or first.name)
                break
            now = time.monotonic()
            if duration and now - started_at >= duration:
                self.request_stop(f"{duration:g} s passed")
                break
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_PERIOD_S
                self._housekeeping()
            for child in self._children:
                if child.restart_at is not None:
                    if now >= child.restart_at and not self._stop_requested.is_set():
                        self._restart(child, environment)
                    continue
                if child.finished:
                    if child.exited_at is not None and now - child.exited_at > window:
                        # Not a stack-wide shutdown: one node told to stop (by anyone in the
                        # domain) must not silently leave the others acting without it.
                        child.finished, child.exited_at = False, None
                        failure = self._on_death(child, 0, now, "exited 0 on its own")
                        if failure:
                            return self._give_up(failure)
                    continue
                code = child.process.poll()
                if code is None:
                    continue
                if code == 0:
                    child.finished, child.exited_at = True, now
                    self.say(
                        f"{child.node.name} finished (exit code 0); restarted unless every node "
                        f"stops within {window:g} s"
                    )
                    continue
                failure = self._on_death(child, code, now)
                if failure:
                    return self._give_up(failure)
            if all(child.finished for child in self._children):
                # Every node finished cleanly (``pamiq-ros shutdown``): nothing left to stop.
                self.request_stop("every node shut down")
        self.say(f"stopping: {self._stop_reason}")
        return []

    def _free_dead_shared_memory(self) -> None:
        """Frees the Fast DDS shared memory of dead processes (a killed node leaves 16 MiB)."""
        report = shared_memory.sweep()
        if report.removed_anything:
            self.say(report.describe())

    def _give_up(self, failure: str) -> list[str]:
        self.say(failure)
        self.request_stop(failure)
        return [failure]

    def _housekeeping(self) -> None:
        try:
            self._budget.enforce()
        except OSError as error:  # a budget pass must never stop the launch
            self.say(f"disk budget pass failed: {error}")

    def _pin_before_first_death(self, child: _Child) -> None:
        """Pins the node's newest checkpoint from before its first death in this launch."""
        name = child.node.name
        if name not in self._pinned:
            self._pinned.add(name)
            pin_last_checkpoint(self._run_dir, name, self.say)

    def _on_death(self, child: _Child, code: int, now: float, how: str | None = None) -> str | None:
        """Schedules the restart of a node that died; returns why the launch must stop instead."""
        # Whatever the dead node started goes with its group before anything replaces it.
        _signal_group(child.process, signal.SIGKILL)
        self._pin_before_first_death(child)
        uptime = now - child.started_at
        died = f"{child.node.name} {how or f'died ({describe_exit(code)})'} after {uptime:.1f} s"
        delay, line = death_verdict(self._settings, child.schedule, died, now, uptime)
        if delay is None:
            return line
        child.restart_at = now + delay
        self.say(line)
        self._free_dead_shared_memory()  # a crash loop must not fill /dev/shm
        return None

    def _restart(self, child: _Child, environment: dict[str, str]) -> None:
        child.process = self._spawn(child.node, environment, self._restart_parameters)
        child.started_at = time.monotonic()
        child.restart_at = None
        child.restarts += 1
        child.readers.append(self._relay_output(child.node.name, child.process))
        resume = self._restart_parameters.get(RESUME_PARAMETER)
        self.say(
            f"{child.node.name} restarted (pid {child.process.pid})"
            + (f" with {RESUME_PARAMETER}={resume}" if resume else "")
        )

    def _stop_all(self) -> list[str]:
        """SIGINT to every group, newest first, then SIGKILL to whatever is left of each group.

        Each node's exit is reported with the seconds it took after the SIGINT.
        """
        running = [child for child in reversed(self._children) if child.process.poll() is None]
        signalled_at = time.monotonic()
        for child in running:
            _signal_group(child.process, signal.SIGINT)
        deadline = signalled_at + self._settings.shutdown_timeout
        failures = []
        waiting = list(running)
        while waiting:
            now = time.monotonic()
            for child in list(waiting):
                code = child.process.poll()
                if code is None:
                    continue
                waiting.remove(child)
                after = now - signalled_at
                self.say(
                    f"{child.node.name} exited ({describe_exit(code)}) {after:.1f} s after SIGINT"
                )
                if code != 0:
                    failures.append(f"{child.node.name} exited with code {code} on Ctrl-C")
            if waiting and now >= deadline:
                timeout = self._settings.shutdown_timeout
                failures += [
                    f"{child.node.name} did not exit within {timeout:g} s and was killed"
                    for child in waiting
                ]
                break
            time.sleep(EXIT_POLL_PERIOD)
        for child in self._children:
            # Anything a node started goes with its group, even when the node itself is gone.
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
            for reader in child.readers:
                reader.join(timeout=2.0)
        return failures

    def _install_signal_handlers(self) -> Callable[[], None]:
        if self._process_stop is not None:
            self._process_stop.catch()  # never put back: see __init__
            return lambda: None
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        # StopRequest.note only notes (no lock, see there); run() polls it.
        previous = {sig: signal.signal(sig, self._stop_signals.note) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _stop_with_the_launcher() -> None:
    """In a new node process: have the kernel send it SIGTERM if the launcher dies.

    Nodes run in process groups of their own (so each can be stopped with what it started), so
    a launcher killed outright would otherwise leave them running. Linux only; elsewhere a
    no-op. The signal comes when the spawning thread ends: the launcher spawns from its main
    thread, which lives as long as the launcher.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
