"""Latency on the target device: one measurement protocol, three backends, a cache and a per-block LUT."""

from .cache import LatencyCache
from .lut import LatencyTable
from .lut_build import build_lut
from .measure import measure_latency
from .protocol import LatencyResult
from .target import BACKENDS, DEVICES, LatencyTarget, check_target

__all__ = ["BACKENDS", "DEVICES", "LatencyCache", "LatencyResult", "LatencyTable", "LatencyTarget",
           "build_lut", "check_target", "measure_latency"]
