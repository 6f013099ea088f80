#!/usr/bin/env bash
# Precision, recall, F1 and median detection delay of the anomaly detector and of seed
# 000's static thresholds, on the sessions recorded in tests/data/ (session 1 tuned the
# detector; session 2 is held out). Release build; about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --locked --test anomaly_eval -- --nocapture --test-threads 1 2>&1 |
  grep -vE '^(running|test |$)|Finished|Running|Compiling'
