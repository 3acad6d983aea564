#!/usr/bin/env python3
"""Decode finalping .hlog files with the reference Python HdrHistogram reader.

Usage: check_hlog.py FILE.hlog [FILE.hlog ...]

For each file, reads every interval with hdrh.log.HistogramLogReader (which
applies the #[StartTime]/#[BaseTime] headers), adds the intervals up and prints
one JSON object on stdout, keyed by file name:

  {"final_ping.hlog": {
      "start_time_s": <StartTime header, seconds since epoch>,
      "intervals": [[offset_s, length_s, count], ...],   # offset from StartTime
      "total_count": N, "min": us, "p50": us, "p90": us, "p99": us, "max": us,
      "recorded": [[value_us, count], ...]               # every non-empty bucket
  }, ...}

Values are in microseconds, as recorded. Exit status 1 with a message on any
file that cannot be read or holds no interval.
"""
import json
import os
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

# finalping's histogram bounds: 1 us .. 1 h, 3 significant digits.
LOWEST, HIGHEST, DIGITS = 1, 3_600_000_000, 3


def read_log(path):
    total = HdrHistogram(LOWEST, HIGHEST, DIGITS)
    reader = HistogramLogReader(path, total)
    intervals = []
    try:
        # Bounded: one iteration per interval line of a finite file.
        while True:
            hist = reader.get_next_interval_histogram()
            if hist is None:
                break
            start_ms = hist.get_start_time_stamp()
            end_ms = hist.get_end_time_stamp()
            intervals.append([
                round(start_ms / 1000.0 - reader.get_start_time_sec(), 6),
                round((end_ms - start_ms) / 1000.0, 6),
                hist.get_total_count(),
            ])
            total.add(hist)
        start_time_s = reader.get_start_time_sec()
    finally:
        reader.close()
    if not intervals:
        raise ValueError(f"{path}: no interval histogram found")
    return {
        "start_time_s": start_time_s,
        "intervals": intervals,
        "total_count": total.get_total_count(),
        "min": total.get_min_value(),
        "p50": total.get_value_at_percentile(50),
        "p90": total.get_value_at_percentile(90),
        "p99": total.get_value_at_percentile(99),
        "max": total.get_max_value(),
        "recorded": [
            [item.value_iterated_to, item.count_at_value_iterated_to]
            for item in total.get_recorded_iterator()
        ],
    }


def main(paths):
    if not paths:
        print("usage: check_hlog.py FILE.hlog [FILE.hlog ...]", file=sys.stderr)
        return 2
    out = {}
    for path in paths:
        try:
            out[os.path.basename(path)] = read_log(path)
        except Exception as exc:  # report which file and why, then fail
            print(f"cannot decode {path}: {exc!r}", file=sys.stderr)
            return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
