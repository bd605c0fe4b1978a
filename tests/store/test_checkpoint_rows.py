"""Checkpoint state rows in the store: appended per checkpoint, the newest per subject restored, superseded rows
deleted once the stream holds more than COMPACT_AFTER rows per roster subject."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.store.alert_store import AlertStore
from geomon.store.live import COMPACT_AFTER


def _save(store, seq, codes, roster, stream="live"):
    store.save_checkpoint(stream, run_id="r", seq=seq, config_hash="c", watermark_ms=seq, positions={},
                          global_state=b"g", pending=b"p", codes=codes,
                          states=[f"{stream}:{seq}:{c}".encode() for c in codes], roster=roster)


@settings(max_examples=40, deadline=None)
@given(roster=st.integers(1, 6), checkpoints=st.lists(st.sets(st.integers(0, 5)), max_size=25))
def test_the_newest_row_of_each_subject_is_its_state_and_the_table_stays_bounded(roster, checkpoints):
    with AlertStore() as store:
        newest = {}
        _save(store, 0, [0], roster, stream="other")          # another stream's rows are never touched
        for seq, codes in enumerate(checkpoints, start=1):
            codes = sorted(c for c in codes if c < roster)
            _save(store, seq, codes, roster)
            newest.update({c: f"live:{seq}:{c}".encode() for c in codes})
            got = store.load_checkpoint("live")
            assert got["seq"] == seq
            assert dict(zip(got["codes"].tolist(), got["states"])) == newest
            rows = store._cursor().execute("SELECT count(*) FROM checkpoint_rows WHERE stream_id = 'live'").fetchone()
            assert rows[0] <= COMPACT_AFTER * roster
        other = store.load_checkpoint("other")
        assert other["codes"].tolist() == [0] and other["states"] == [b"other:0:0"]
