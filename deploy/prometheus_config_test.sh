#!/usr/bin/env bash
# The Prometheus configuration and its alert rules must load in the Prometheus we ship against
# (promtool 2.42), and every alert must fire, and only fire, as its unit tests say.
set -euo pipefail
/usr/bin/promtool check config deploy/prometheus/prometheus.yml
/usr/bin/promtool check rules deploy/prometheus/alerts.yml
/usr/bin/promtool test rules deploy/prometheus/alerts_test.yml
