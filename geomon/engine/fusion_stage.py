"""The Monitor's fusion stage: each admitted fix's causal fused position and covariance, the decidable fixes,
and the fused tracks the meeting watch reads.

:class:`FusionStage` is mixed into :class:`geomon.engine.monitor.Monitor`. It runs the constant-velocity
Kalman filter of :func:`geomon.kernels.fusion.fuse_step` with one state row per person, carried in a
*bank* (the Monitor's :class:`~geomon.engine.monitor.MonitorState` for subjects, the meeting watch's
state for the other people), and turns its output into :class:`~geomon.engine.contract.FusedFixes`
(raw and fused positions under different names) and :class:`~geomon.engine.contract.TrackPoints`.
"""

from __future__ import annotations

import time

import numpy as np

from geomon.engine.contract import AdmittedFixes, FusedFixes, TrackPoints
from geomon.engine.rows import subject_runs
from geomon.kernels import fusion as _kf
from geomon.tracks.fusion import CORRELATED_CODES, SOURCE_CODE, correlated_run_length, sigma_from_codes, trusted_sigma_m

__all__ = ["FusionStage"]


class FusionStage:
    """Fusion methods of the Monitor (a mixin: the Monitor holds the banks, ``fusion_params``, ``keep_tracks``)."""

    def _noise(self, bank, f: AdmittedFixes, first: np.ndarray) -> np.ndarray:
        """Per-axis sigma of each fix as :func:`geomon.fuse` takes it, correlated-source runs carried across batches."""
        code, source = f.code, f.source.astype(np.int64)
        run = correlated_run_length(source, first, bank.run_source[code], bank.run_length[code])
        last = np.r_[first[1:], True]
        correlated = np.isin(source[last], CORRELATED_CODES)
        bank.run_source[code[last]] = np.where(correlated, source[last], -1)
        bank.run_length[code[last]] = np.where(correlated, run[last], 0)
        return sigma_from_codes(f.accuracy_m, source) * np.sqrt(run)

    def _filter(self, bank, f: AdmittedFixes):
        """The causal filter over fixes sorted by code, state carried in ``bank`` (this Monitor's state, or the
        other people's in :attr:`meetings`): positions, covariance, the fix's outlier probability and the trusted
        1-sigma."""
        first, offsets, subjects = subject_runs(f.code)
        sigma = self._noise(bank, f, first)
        state = np.ascontiguousarray(bank.fusion[subjects])
        x, y, var_x, var_y, cov_xy, _, _, _, _, p_outlier, _ = _kf.fuse_step(
            offsets, f.t_ms, f.raw_x_m, f.raw_y_m, sigma, state, **self.fusion_params)
        bank.fusion[subjects] = state
        # The 1-sigma decisions lean on (night, stays, meetings) and the stored tracks carry: the fused one, never
        # below the fix's own accuracy.
        satellite = f.source == SOURCE_CODE["gnss"]
        trusted = trusted_sigma_m(np.sqrt(0.5 * (var_x + var_y)), f.accuracy_m, satellite)
        return x, y, var_x, var_y, cov_xy, p_outlier, trusted

    def _fuse(self, f: AdmittedFixes) -> tuple[FusedFixes, TrackPoints]:
        """Each fix's causal fused position and covariance; the decidable fixes, and the fused track (every
        fix with a position)."""
        clock = time.perf_counter()
        code = f.code
        x, y, var_x, var_y, cov_xy, p_outlier, trusted = self._filter(self.state, f)
        ok = np.isfinite(x) & np.isfinite(y)
        track = TrackPoints(code=code[ok], t_ms=f.t_ms[ok], fused_x_m=x[ok], fused_y_m=y[ok], sigma_m=trusted[ok])
        if self.keep_tracks:
            self._tracks.append(track)
        # Fixes vaguer than the profile's max_accuracy_m (cell fixes, mostly)
        # feed the filter but cannot confirm or clear a boundary decision.
        decide = np.isfinite(x) & ~(f.accuracy_m > self._max_accuracy_m[f.tset])
        self.state.n_vague += int(code.size - decide.sum())
        self._tick("fuse", clock)
        # Decisions read the fused position and its covariance, which already cover a fix that may be
        # multipath (the filter's update is the mixture of the two).
        return FusedFixes(code=code[decide], t_ms=f.t_ms[decide], fused_x_m=x[decide], fused_y_m=y[decide],
                          raw_x_m=f.raw_x_m[decide], raw_y_m=f.raw_y_m[decide], var_x=var_x[decide],
                          var_y=var_y[decide], cov_xy=cov_xy[decide], p_outlier=p_outlier[decide],
                          accuracy_m=f.accuracy_m[decide], tset=f.tset[decide], sigma_m=trusted[decide]), track

    def _tracks_of_everyone(self, track: TrackPoints | None, others: AdmittedFixes) -> TrackPoints:
        """The subjects' fused track and the other people's, filtered here, numbered as the meeting watch does."""
        parts = [track] if track is not None else []
        if len(others):
            x, y, *_, trusted = self._filter(self.meetings.state, others)
            ok = np.isfinite(x) & np.isfinite(y)
            parts.append(TrackPoints(code=others.code[ok] + len(self.subject_ids), t_ms=others.t_ms[ok],
                                     fused_x_m=x[ok], fused_y_m=y[ok], sigma_m=trusted[ok]))
        return TrackPoints.concat(parts)
