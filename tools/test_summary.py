#!/usr/bin/env python3
"""Counts the test cases of `bazel test` runs and prints "N passed, N failed, N skipped".

Usage: test_summary.py EVENTS TESTLOGS [EVENTS TESTLOGS]... (one pair per run: the default
build's and each sanitizer build's, which have testlogs of their own).

Reads the run's build event file (which targets were tested and how they ended) and each
target's JUnit test.xml (its individual cases), so a cached or stale result of a target that
did not run this time is never counted. A target that failed without a report (build failure,
crash before writing it) counts as one failed case. Exits 1 if nothing ran or anything failed.
"""

import json
import os
import sys
import xml.etree.ElementTree as ElementTree


def target_results(events_path):
    """Maps each test target label to its overall status (PASSED, FAILED, NO_STATUS...)."""
    results = {}
    with open(events_path) as events:
        for line in events:
            event = json.loads(line)
            event_id = event.get("id", {})
            if "testSummary" in event_id:
                label = event_id["testSummary"]["label"]
                results[label] = event.get("testSummary", {}).get("overallStatus", "NO_STATUS")
            elif "targetCompleted" in event_id:
                built = event.get("completed", {}).get("success", False)
                if not built:  # A target that failed to build (tested or not) is a failure.
                    results.setdefault(event_id["targetCompleted"]["label"], "FAILED_TO_BUILD")
    return results


def count_cases(xml_path):
    """Returns (passed, failed, skipped) test cases of one JUnit XML report."""
    passed = failed = skipped = 0
    for case in ElementTree.parse(xml_path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def count_run(events_path, testlogs):
    """Returns (passed, failed, skipped) test cases of one run."""
    passed = failed = skipped = 0
    for label, status in sorted(target_results(events_path).items()):
        package, _, name = label.lstrip("/").partition(":")
        report = os.path.join(testlogs, package, name, "test.xml")
        ran = status in ("PASSED", "FLAKY", "FAILED", "TIMEOUT")
        if ran and os.path.exists(report):
            p, f, s = count_cases(report)
            if status not in ("PASSED", "FLAKY") and f == 0:
                f = 1  # The target failed (timeout, crash at exit) though every case passed.
            passed, failed, skipped = passed + p, failed + f, skipped + s
        else:
            failed += 1
            print(f"{label}: {status}", file=sys.stderr)
    return passed, failed, skipped


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: test_summary.py EVENTS TESTLOGS [EVENTS TESTLOGS]...")
    passed = failed = skipped = 0
    for events_path, testlogs in zip(args[::2], args[1::2]):
        p, f, s = count_run(events_path, testlogs)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
