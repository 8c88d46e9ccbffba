#!/usr/bin/env bash
# The Prometheus configuration must load in the Prometheus we ship against (promtool 2.42).
set -euo pipefail
/usr/bin/promtool check config deploy/prometheus/prometheus.yml
