"""The micro-batcher on its own: gathering, bounded waits, failures that stay local."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mfmrec.serve.batcher import MicroBatcher


def _echo_batcher(**kwargs) -> tuple[MicroBatcher, list[list[int]]]:
    calls: list[list[int]] = []

    def fn(key, payloads):
        calls.append(list(payloads))
        return [(key, p * 10) for p in payloads]

    return MicroBatcher(fn, **kwargs), calls


def test_concurrent_requests_become_one_call_and_results_go_back_in_order():
    batcher, calls = _echo_batcher(max_batch=64, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(batcher.submit("m", i) for i in range(20)))

    results = asyncio.run(main())
    assert results == [("m", i * 10) for i in range(20)]
    assert calls == [list(range(20))]
    assert batcher.stats.calls == 1 and batcher.stats.sizes == [20]


def test_max_batch_bounds_each_call_and_keys_never_mix():
    batcher, calls = _echo_batcher(max_batch=4, max_wait_ms=5)

    async def main():
        a = [batcher.submit("a", i) for i in range(10)]
        b = [batcher.submit("b", i) for i in range(3)]
        return await asyncio.gather(*a, *b)

    results = asyncio.run(main())
    assert results[:10] == [("a", i * 10) for i in range(10)]
    assert results[10:] == [("b", i * 10) for i in range(3)]
    assert all(len(c) <= 4 for c in calls)
    assert sorted(len(c) for c in calls) == [2, 3, 4, 4]


def test_no_batching_is_one_call_per_request():
    batcher, calls = _echo_batcher(max_batch=1, max_wait_ms=0)

    async def main():
        return await asyncio.gather(*(batcher.submit("m", i) for i in range(5)))

    assert asyncio.run(main()) == [("m", i * 10) for i in range(5)]
    assert calls == [[i] for i in range(5)]
    assert not batcher.batching


def test_calls_run_off_the_event_loop_thread():
    seen: list[str] = []

    def fn(key, payloads):
        seen.append(threading.current_thread().name)
        return payloads

    batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=1)
    assert asyncio.run(batcher.submit("m", 1)) == 1
    assert seen and seen[0] != threading.main_thread().name


def test_a_failing_call_fails_only_its_own_requests():
    def fn(key, payloads):
        if key == "bad":
            raise RuntimeError("model exploded")
        return payloads

    batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=5)

    async def main():
        good = [batcher.submit("good", i) for i in range(3)]
        bad = [batcher.submit("bad", i) for i in range(3)]
        out = await asyncio.gather(*good, *bad, return_exceptions=True)
        after = await batcher.submit("good", 99)  # the batcher still works
        return out, after

    out, after = asyncio.run(main())
    assert out[:3] == [0, 1, 2]
    assert all(isinstance(e, RuntimeError) and "exploded" in str(e) for e in out[3:])
    assert after == 99


def test_a_wrong_number_of_results_is_an_error_not_a_hang():
    batcher = MicroBatcher(lambda key, payloads: payloads[:-1], max_batch=8, max_wait_ms=5)

    async def main():
        return await asyncio.gather(*(batcher.submit("m", i) for i in range(3)),
                                    return_exceptions=True)

    assert all(isinstance(e, RuntimeError) for e in asyncio.run(main()))


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_wait_ms": -1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        MicroBatcher(lambda k, p: p, **kwargs)
