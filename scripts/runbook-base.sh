#!/usr/bin/env bash
# Prints or sets the base of every alert's runbook_url (docs/runbooks/README.md).
#
#   scripts/runbook-base.sh          print the base the rule files use
#   scripts/runbook-base.sh BASE     rewrite it to BASE in place, everywhere it is written
#   scripts/runbook-base.sh --config FILE...
#                                    check that each agent configuration's
#                                    alertmanager.runbook_url_base, when set, is that base
#
# Prometheus rule files have no variables, so the base is written out in each
# runbook_url: annotation. This script is the one place to change it: it replaces the
# current base (read from prometheus/rules/) in the rule files and their promtool tests,
# in the Alertmanager test data, in the agent's own notices (src/, tests/) and in the
# Kubernetes bundle (deploy/, when present), so that the checks and tests keep agreeing.
# BASE is the address of the docs/runbooks/ directory as your users can open it, ending
# in "/": a page is <BASE><AlertName>.md.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."

fail() { echo "runbook-base: $*" >&2; exit 1; }

current=$(grep -rhoE 'runbook_url: *https?://[^ ]+/[A-Za-z0-9]+\.md' prometheus/rules/ |
    sed -E 's/^runbook_url: *//; s#[A-Za-z0-9]+\.md$##' | sort -u)
[[ -n $current ]] || fail "no runbook_url in prometheus/rules/"
[[ $(wc -l <<<"$current") -eq 1 ]] || fail "the rule files use several bases:"$'\n'"$current"

if [[ $# -eq 0 ]]; then
    echo "$current"
    exit 0
fi
# The agent's own notices take their base from alertmanager.runbook_url_base (default:
# the base built into the binary, which the rewrite below changes in src/ too).
if [[ $1 == --config ]]; then
    shift
    [[ $# -gt 0 ]] || fail "usage: $0 --config FILE..."
    status=0
    for file in "$@"; do
        path=$file
        [[ $path == /* ]] || path="$caller/$path"
        [[ -r $path ]] || fail "cannot read $file"
        set="$(grep -hoE "runbook_url_base[\"']?[[:space:]]*:[[:space:]]*[\"']?[^\"'[:space:],}]+" "$path" |
            sed -E "s/^runbook_url_base[\"']?[[:space:]]*:[[:space:]]*[\"']?//")" || true
        if [[ -z $set ]]; then
            echo "$file: alertmanager.runbook_url_base not set; the notices use the agent's built-in base"
        elif [[ $set == "$current" ]]; then
            echo "$file: alertmanager.runbook_url_base is the rules' base"
        else
            echo "runbook-base: $file: alertmanager.runbook_url_base is $set, the rules use $current" >&2
            status=1
        fi
    done
    exit $status
fi
[[ $# -eq 1 ]] || fail "usage: $0 [BASE]"
new=$1
[[ $new == */ ]] || new="$new/"
[[ $new =~ ^https?://[^[:space:]\"\'\|]+$ ]] || fail "BASE must be an absolute http(s) address without spaces or quotes: $1"
if [[ $new == "$current" ]]; then
    echo "runbook_url base is already $new"
    exit 0
fi

dirs=(prometheus alertmanager src tests)
[[ -d deploy ]] && dirs+=(deploy)
mapfile -t files < <(grep -rlF --exclude-dir=target -- "$current" "${dirs[@]}")
for file in "${files[@]}"; do
    OLD=$current NEW=$new perl -pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/g' "$file"
done
# A base of another length may move a line of Rust past (or back under) rustfmt's width.
if command -v cargo >/dev/null; then cargo fmt; fi
echo "runbook_url base: $current -> $new (${#files[@]} files):"
printf '  %s\n' "${files[@]}"
echo "Rebuild the agent for its own notices; scripts/check/prometheus.sh checks the rules."
echo "An agent whose configuration sets alertmanager.runbook_url_base keeps that base: set it"
echo "to $new there, and check with: $0 --config FILE..."
