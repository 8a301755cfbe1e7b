"""How a node process ends on SIGINT and SIGTERM: cleanly, however often they arrive.

ROS users stop nodes with Ctrl-C, and under ``ros2 launch`` a node often gets SIGINT
twice within milliseconds (the terminal sends it to the whole process group and launch
forwards its own), then SIGTERM if it is still running after ``sigterm_timeout``. rclpy's
handler (installed by ``rclpy.init`` on the default context) shuts the ROS context down,
which ends ``rclpy.spin``; behind it Python's default SIGINT handler raises
``KeyboardInterrupt`` wherever the main thread is at that moment. A second SIGINT during
the teardown (``destroy_node`` joining worker threads, closing a bag) thus becomes a
traceback and a non-zero exit status ("process has died"), and a SIGTERM after
``rclpy.try_shutdown`` (which puts back the default action) kills the process.

:class:`ShutdownSignals` replaces Python's handlers of both signals with one that only
records the signal. Installed BEFORE ``rclpy.init``, rclpy's handler chains to it: the
first signal ends the spin through the context shutdown, the teardown runs to its end
whatever arrives next, and the process exits with status 0. Where no rclpy handler is
installed (a non-default context, as ``fluoro-perception run`` uses), the spin loop
polls :attr:`ShutdownSignals.requested` instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: Signals that end a node (Ctrl-C, and what launch / systemd / docker send).
SHUTDOWN_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class ShutdownSignals:
    """Records SIGINT / SIGTERM instead of raising (see the module docstring).

    Use :meth:`install` at the top of a node's ``main`` (before ``rclpy.init``; the
    handlers stay for the life of the process), or as a context manager where the
    previous handlers must come back afterwards (a command run inside a test process).

    Attributes
    ----------
    received : list of int
        Signal numbers in arrival order.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """True once a shutdown signal arrived."""
        return bool(self.received)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    def install(self) -> ShutdownSignals:
        """Route both signals to :meth:`_record`; a no-op off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return self  # signal.signal only works on the main thread
        for signum in SHUTDOWN_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def ignore(self) -> None:
        """Ignore both signals from now on: call when the process is about to exit.

        Python's finalization puts back the default action of every signal that has a
        Python handler, so a late SIGINT would still kill the exiting process (status
        -2); an ignored signal keeps its disposition through finalization.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in SHUTDOWN_SIGNALS:
            self._previous.setdefault(signum, signal.getsignal(signum))
            signal.signal(signum, signal.SIG_IGN)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> ShutdownSignals:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.restore()


def start_failure(logger_name: str, exc: Exception) -> SystemExit:
    """One fatal line for a failure to start the ROS context or the node; exit status 1.

    rcl/rmw errors (e.g. ``ROS_SECURITY_ENABLE=true`` with ``ROS_SECURITY_STRATEGY=Enforce``
    and a missing keystore or enclave, or a DDS build without security) cannot be fixed
    by retrying: exit at once with the reason instead of a traceback, so a supervisor
    sees a clear failure (docs/reliability.md, "DDS security").
    """
    import rclpy

    reason = " ".join(str(exc).split())
    hint = " (check ROS_SECURITY_* and --enclave)" if "SECURITY" in reason.upper() else ""
    rclpy.logging.get_logger(logger_name).fatal(f"cannot start: {reason}{hint}")
    return SystemExit(1)


def run_node(make_node: Callable[[], Any], logger_name: str, args: list[str] | None = None) -> None:
    """``main`` of a node executable: init, spin until shut down, tear down, exit 0.

    The ros2/demos ``main`` pattern plus :class:`ShutdownSignals`, so that repeated
    SIGINT and SIGTERM end it without a traceback. Exits with status 1 and one FATAL
    line when the context or the node cannot be created (bad parameters: a
    ``ValueError`` from the node's constructor; rcl errors: :func:`start_failure`).
    A failure while running keeps its traceback (it is a bug).
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from fluoro_perception.nodes.dds_profile import apply_dds_profile

    signals = ShutdownSignals().install()
    apply_dds_profile()  # before the first participant (dds_profile)
    try:
        rclpy.init(args=args)
    except RuntimeError as exc:  # rclpy's RCLError (security set-up, bad arguments)
        raise start_failure(logger_name, exc) from None
    node = None
    failure: SystemExit | None = None
    try:
        # the executor before the node: a signal while the node starts (model loading)
        # shuts the context down, and an executor can no longer be created after that
        executor = SingleThreadedExecutor()
        node = make_node()
        rclpy.spin(node, executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:
        # a parameter override of the wrong type or out of range: one line, no traceback
        rclpy.logging.get_logger(logger_name).fatal(f"bad parameters: {exc}")
        failure = SystemExit(1)
    except RuntimeError as exc:
        if signals.requested:
            pass  # stopped while starting: rclpy refuses entities on a shut-down context
        elif node is not None:
            raise  # a failure while running is a bug: keep its traceback
        else:
            failure = start_failure(logger_name, exc)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        signals.ignore()  # the process ends now: a late signal must not kill it
    if failure is not None:
        raise failure


def _main_with_shutdown_signals(main: Callable[[], object]) -> None:
    """Run a node's own ``main`` behind :class:`ShutdownSignals` (ignored once it returns).

    A signal that arrives while the node is still starting shuts the context down under
    it, and rclpy then refuses to create the next entity (``RCLError``, a RuntimeError):
    after a shutdown signal that is the requested stop, not a failure.
    """
    signals = ShutdownSignals().install()
    try:
        main()
    except RuntimeError:
        if not signals.requested:
            raise
    finally:
        signals.ignore()


def bag_player_main() -> None:
    """Console script ``bag_player_node``: its ``main`` behind :class:`ShutdownSignals`."""
    from fluoro_perception.nodes import bag_player_node

    _main_with_shutdown_signals(bag_player_node.main)


def bag_recorder_main() -> None:
    """Console script ``bag_recorder_node``: its ``main`` behind :class:`ShutdownSignals`."""
    from fluoro_perception.nodes import bag_recorder_node

    _main_with_shutdown_signals(bag_recorder_node.main)
