"""Bounded concurrent writes: each policy's act/apply on a pool of threads, one policy's writes in order.

A cycle's Kubernetes writes (the /scale patch, the /status patch, the
Events) are round trips the operator only waits for; done one policy after
another, 3,333 policies that all pre-scale take ~20 s of API time in one
shard's cycle (docs/operator.md). The ``Reconciler`` therefore splits each
policy in two: the main thread reads, forecasts and decides (``observe``,
``plan``: CPU and the caches), then hands the rest, the policy's *writes*
(``act``: /scale, with its 409 re-read and decision again; then ``record``
and the effects: incident calls, /status, Events, metrics), to
``WritePool.submit``. Up to ``concurrency`` policies' writes run at once on a
``ThreadPoolExecutor`` (the official client is synchronous); one policy's
run in one task, so its scale -> status -> Event order holds; the cycle waits
for all of them (``WritePool.drain``) before it ends, so a policy is never in
two cycles at once.

What stays as it was:

* the write fence: every write still passes ``Fence.check`` on its own
  thread; a policy whose writes meet a closed fence (``NotLeader``) stops the
  pool: the tasks not yet started are dropped (their policies report
  ``NotLeader`` and write nothing) and the cycle submits no more;
* a 409 is one policy's: its task re-reads and decides again, the other
  tasks never see it;
* ``concurrency`` 1 runs each task inline at ``submit``: today's serial
  cycle, exactly (``pitboss operator run --write-concurrency 1``).

At most ``2 x concurrency`` tasks wait at once (``submit`` blocks past
that), so the main thread stays at most a few policies ahead of the writes
it decided. ``pool_maxsize`` sizes the client's urllib3 pool to match (the
writers, the four informers' watches, the Lease and Event threads), set on
the ``kubernetes.client.Configuration`` before the ``ApiClient`` is built.
Built by ``controller.operator.app.build_operator``; used by
``controller.operator.reconcile``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from controller.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_WRITE_CONCURRENCY = 8
MAX_WRITE_CONCURRENCY = 64
# Connections other than the writers': the four informers' watches (each holds one for its timeout), the
# lease renewals and the incident Events' delivery thread.
OTHER_CONNECTIONS = 6


def check_concurrency(concurrency: int) -> int:
    """``concurrency`` if it is 1..64; InputError naming --write-concurrency otherwise."""
    if not 1 <= concurrency <= MAX_WRITE_CONCURRENCY:
        raise InputError(f"expected 1..{MAX_WRITE_CONCURRENCY}, got {concurrency}", field="--write-concurrency")
    return concurrency


def pool_maxsize(concurrency: int) -> int:
    """The urllib3 pool size (``Configuration.connection_pool_maxsize``) for ``concurrency`` writers.

    urllib3 opens a connection beyond the pool's size when every pooled one is busy, but closes it
    afterwards ("Connection pool is full, discarding connection"): each write past the size would pay a
    new TCP (and TLS) handshake.
    """
    return check_concurrency(concurrency) + OTHER_CONNECTIONS


def size_pool(configuration: Any, concurrency: int) -> Any:
    """Set ``configuration.connection_pool_maxsize`` for ``concurrency`` writers (before the ApiClient)."""
    configuration.connection_pool_maxsize = pool_maxsize(concurrency)
    return configuration


class WritePool:
    """Runs policies' write tasks, up to ``concurrency`` at once; ``stop()`` drops the ones not yet started."""

    def __init__(self, concurrency: int = DEFAULT_WRITE_CONCURRENCY) -> None:
        self.concurrency = check_concurrency(concurrency)
        self._executor = (ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pitboss-write")
                          if concurrency > 1 else None)
        self._slots = threading.BoundedSemaphore(2 * concurrency)
        self._stopped = threading.Event()
        self.worker_seconds = 0.0  # wall time of the tasks run on the pool's threads (not inline)
        self.wait_seconds = 0.0  # the submitting thread blocked on a free slot or in ``drain``
        self._lock = threading.Lock()
        self._tasks: list[Future[Any]] = []

    @property
    def stopped(self) -> bool:
        """True after ``stop()`` until the next ``start_cycle()``."""
        return self._stopped.is_set()

    @property
    def submitted(self) -> int:
        """Tasks submitted to the pool's threads this cycle."""
        return len(self._tasks)

    def start_cycle(self) -> None:
        """A new cycle: open again and reset the timings."""
        self._stopped.clear()
        self.worker_seconds = self.wait_seconds = 0.0
        self._tasks = []

    def stop(self) -> None:
        """Drop every task not yet started (a closed fence: nothing more may be written this cycle)."""
        self._stopped.set()

    def submit(self, task: Callable[[], T], dropped: Callable[[], T]) -> Future[T]:
        """Run ``task`` on the pool (inline when ``concurrency`` is 1); ``dropped()`` if stopped before it starts."""
        if self._executor is None:
            done: Future[T] = Future()
            done.set_result(dropped() if self.stopped else task())
            return done
        t0 = time.perf_counter()
        self._slots.acquire()
        self.wait_seconds += time.perf_counter() - t0

        def run() -> T:
            try:
                if self.stopped:
                    return dropped()
                started = time.perf_counter()
                try:
                    return task()
                finally:
                    with self._lock:
                        self.worker_seconds += time.perf_counter() - started
            finally:
                self._slots.release()

        future = self._executor.submit(run)
        self._tasks.append(future)
        return future

    def drain(self) -> None:
        """Wait for every task of this cycle, then raise the first task's exception, if any (no task of
        this cycle may still be writing when the next cycle starts)."""
        t0 = time.perf_counter()
        wait(self._tasks)
        self.wait_seconds += time.perf_counter() - t0
        for future in self._tasks:
            future.result()

    def check_pool(self, configuration: Any) -> WritePool:
        """Warn when ``configuration``'s connection pool is smaller than this pool's writers need (``size_pool``)."""
        size, needed = configuration.connection_pool_maxsize, pool_maxsize(self.concurrency)
        if size is not None and size < needed:
            log.warning("the API client's connection pool (%d) is smaller than %d writers need (%d)", size,
                        self.concurrency, needed)
        return self

    def close(self) -> None:
        """Stop the threads (after the tasks submitted so far)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


__all__ = ["DEFAULT_WRITE_CONCURRENCY", "MAX_WRITE_CONCURRENCY", "WritePool", "check_concurrency",
           "pool_maxsize", "size_pool"]
