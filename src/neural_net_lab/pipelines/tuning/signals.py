"""How a driver's Ctrl-C and SIGTERM stop a study: between the study loop's steps, never
inside one.

The run's hooks turn SIGINT and SIGTERM into ``RunInterrupted``; raised wherever Python
happens to be, it could leave a trial asked for and not yet in the driver's account, or a
result half told (``SignalGate`` says where else). ``executor``'s loop holds the signals
with ``SignalGate`` and lets them through where no step is half done.

Apart from ``executor`` because it knows nothing of Optuna or Dask: only of signals, the
main thread and the handler in place. The tuning executor imports it, and is itself
imported only inside the tuning nodes.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class SignalGate:
    """SIGINT and SIGTERM held while the driver works, and let through between its steps.

    A handler that raises (the run's hooks raise ``RunInterrupted``, Python's default raises
    ``KeyboardInterrupt``) stops whatever Python is running when the signal comes: between
    asking for a trial and entering it in the driver's account, halfway through telling a
    result, or inside a garbage-collector callback of distributed's, where the exception is
    printed and dropped and the run goes on (seen: the study then waited for good on workers
    that the same Ctrl-C had stopped). So while the study loop runs a signal is only noted,
    and ``let_through`` hands it to the handler that was in place between the loop's steps,
    where none is half done; the loop comes by at least every ``wait()`` seconds. Only the
    main thread can handle signals: elsewhere the gate does nothing.
    """

    POLL_S = 0.5

    def __init__(self) -> None:
        self._held: list[int] = []
        self._previous: dict[int, Any] = {}
        self._holding = False

    def __enter__(self) -> SignalGate:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if handler is not None:  # None: installed outside Python, cannot be put back
                    self._previous[signum] = handler
            self._hold()
        return self

    def __exit__(self, error_type: Any, *_: Any) -> None:
        self._release()
        held, self._held = self._held, []
        if error_type is None:  # a signal that came as the study ended still stops the run
            for signum in held:
                signal.raise_signal(signum)

    def wait(self) -> float | None:
        return self.POLL_S if self._previous else None

    def let_through(self) -> None:
        if not self._held:
            return
        held, self._held = self._held, []
        self._release()
        for signum in held:
            signal.raise_signal(signum)  # the handler in place runs, and raises, here
        self._hold()  # it did not raise (an ignored signal): hold on

    def _note(self, signum: int, _frame: Any) -> None:
        self._held.append(signum)

    def _hold(self) -> None:
        for signum in self._previous:
            signal.signal(signum, self._note)
        self._holding = bool(self._previous)

    def _release(self) -> None:
        if self._holding:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._holding = False
