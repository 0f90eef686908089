"""Ring buffers: wrap-around, lapped readers, gaps, and no torn frames under concurrency."""

from __future__ import annotations

import threading

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing


def test_frame_ring_wraps_and_keeps_the_newest() -> None:
    ring = FrameRing(4, (2, 2, 1))
    for i in range(10):
        ring.write(np.full((2, 2, 1), i, np.uint8), t_ns=i * 100)
    idx = ring.index()
    assert list(idx.seq) == [6, 7, 8, 9]
    assert list(idx.t_ns) == [600, 700, 800, 900]
    assert ring.newest_t_ns() == 900
    frame = ring.read(8)
    assert frame is not None and int(frame[0, 0, 0]) == 8


def test_reading_an_overwritten_frame_is_refused_and_counted() -> None:
    ring = FrameRing(3, (1, 1, 1))
    for i in range(5):
        ring.write(np.full((1, 1, 1), i, np.uint8), t_ns=i)
    assert ring.read(0) is None
    assert ring.lapped == 1


def test_reader_lapped_during_copy_gets_no_frame() -> None:
    ring = FrameRing(2, (4, 4, 3))
    ring.write(np.zeros((4, 4, 3), np.uint8), t_ns=0)
    ring.write(np.zeros((4, 4, 3), np.uint8), t_ns=1)
    out = np.empty((4, 4, 3), np.uint8)
    real_copyto = np.copyto

    def copy_while_writer_laps(dst: np.ndarray, src: np.ndarray) -> None:
        real_copyto(dst, src)
        # The writer wraps around onto slot 0 while the reader is copying it.
        ring.begin_write()

    np.copyto = copy_while_writer_laps  # type: ignore[assignment]
    try:
        assert not ring.read_into(0, out)
    finally:
        np.copyto = real_copyto
    assert ring.lapped == 1


def test_evicting_frames_a_reader_still_needs_counts_a_drop() -> None:
    ring = FrameRing(3, (1, 1, 1))
    ring.release_before(0)
    for i in range(5):
        ring.write(np.zeros((1, 1, 1), np.uint8), t_ns=10 + i)
    assert ring.dropped == 2
    ring2 = FrameRing(3, (1, 1, 1))
    ring2.release_before(1000)  # the reader has moved past all of them
    for i in range(5):
        ring2.write(np.zeros((1, 1, 1), np.uint8), t_ns=10 + i)
    assert ring2.dropped == 0


def test_aborted_slot_stays_invisible() -> None:
    ring = FrameRing(3, (1, 1, 1))
    ring.write(np.ones((1, 1, 1), np.uint8), t_ns=1)
    ring.begin_write()
    ring.abort()
    assert list(ring.index().seq) == [0]


def test_concurrent_writer_and_readers_never_see_a_torn_frame() -> None:
    # Each frame is filled with one value; a torn copy would mix two values.
    ring = FrameRing(8, (48, 64, 3))
    n_frames = 100_000
    stop = threading.Event()
    torn: list[int] = []
    good = [0]

    def writer() -> None:
        for i in range(n_frames):
            slot = ring.begin_write()
            slot[...] = i % 251
            ring.commit(i)
        stop.set()

    def reader() -> None:
        out = np.empty((48, 64, 3), np.uint8)
        while not stop.is_set():
            idx = ring.index()
            for seq in idx.seq[-3:]:
                if ring.read_into(int(seq), out):
                    lo, hi = int(out.min()), int(out.max())
                    if lo != hi or lo != int(seq) % 251:
                        torn.append(int(seq))
                    good[0] += 1

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert ring.written == n_frames
    assert good[0] > 1000
    assert torn == []


def test_sample_ring_wraps_and_reads_exact_ranges() -> None:
    ring = SampleRing(100)
    data = np.arange(250, dtype=np.float32)
    for i in range(0, 250, 30):
        ring.write(data[i : i + 30], n0=1000 + i)
    out, mask = ring.read(1000 + 180, 50)
    assert mask.all()
    np.testing.assert_array_equal(out[:, 0], data[180:230])
    # older than the ring holds: zeros, masked
    out, mask = ring.read(1000 + 100, 100)
    assert not mask[:50].any() and mask[50:].all()
    np.testing.assert_array_equal(out[50:, 0], data[150:200])


def test_skipped_samples_become_a_masked_gap() -> None:
    ring = SampleRing(1000)
    ring.write(np.ones(100, np.float32), n0=0)
    ring.write(np.ones(100, np.float32), n0=150)  # 50 samples lost
    out, mask = ring.read(0, 250)
    assert mask[:100].all() and not mask[100:150].any() and mask[150:].all()
    assert (out[100:150] == 0).all()
    assert ring.gap_samples == 50 and ring.gap_events == 1


def test_invalid_block_is_masked_and_future_samples_are_masked() -> None:
    ring = SampleRing(1000)
    ring.write(np.ones(100, np.float32), n0=0)
    ring.write(np.ones(50, np.float32), valid=False)  # e.g. the block after an overflow
    _, mask = ring.read(50, 200)
    assert mask[:50].all() and not mask[50:].any()


def test_overlapping_block_is_trimmed_not_duplicated() -> None:
    ring = SampleRing(1000)
    ring.write(np.arange(100, dtype=np.float32), n0=0)
    ring.write(np.arange(100, 200, dtype=np.float32) - 50, n0=50)
    out, mask = ring.read(0, 150)
    assert mask.all()
    np.testing.assert_array_equal(out[:, 0], np.arange(150))
    assert ring.overlaps == 1


def test_concurrent_sample_writer_and_reader_see_consistent_data() -> None:
    # Sample k holds the value k (mod 2^24 exactly representable): any stale or torn sample shows.
    ring = SampleRing(4000)
    total = 2_000_000
    stop = threading.Event()
    bad: list[int] = []

    def writer() -> None:
        for n0 in range(0, total, 320):
            ring.write(np.arange(n0, n0 + 320, dtype=np.float32) % 4096, n0=n0)
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            end = ring.end
            n0 = max(0, end - 3900)
            out, mask = ring.read(n0, 3200)
            want = (np.arange(n0, n0 + 3200) % 4096).astype(np.float32)
            wrong = mask & (out[:, 0] != want)
            if wrong.any():
                bad.append(n0)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert bad == []
