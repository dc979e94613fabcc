"""``limit_native_threads``: what `pitboss operator run --native-threads` does to numpy's BLAS pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from controller.errors import InputError
from controller.operator.app import limit_native_threads


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    yield
    for api, n in before.items():
        threadpool_limits(limits=n, user_api="blas" if api in ("openblas", "mkl", "blis", "flexiblas") else None)


def test_one_thread_caps_every_native_pool() -> None:
    pools = limit_native_threads(1)
    assert pools and set(pools.values()) == {1}
    assert {i["num_threads"] for i in threadpool_info()} == {1}


def test_zero_leaves_the_pools_as_the_libraries_chose() -> None:
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    limit_native_threads(0)
    assert {i["filepath"]: i["num_threads"] for i in threadpool_info()} == before


def test_a_negative_count_is_an_input_error_naming_the_flag() -> None:
    with pytest.raises(InputError, match="native-threads"):
        limit_native_threads(-1)
