#!/usr/bin/env bash
# Look at a `lathe report` page as a browser draws it: headless Chromium (Debian package
# `chromium`) renders REPORT.html to a PNG, with the network off, so that anything the page
# would fetch is missing from the picture. Not part of `make test` (Chromium is ~300 MB).
# usage: tools/report_screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]   (default 1400x1500)
set -euo pipefail
html=${1:?REPORT.html}
png=${2:?OUT.png}
size=${3:-1400x1500}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "report_screenshot: no chromium (Debian: apt-get install chromium)" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --proxy-server to a closed port: any http(s) request fails instead of reaching out
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --proxy-server=127.0.0.1:9 --window-size="${size/x/,}" --screenshot="$png" \
    "file://$(realpath "$html")" 2>/dev/null
echo "report_screenshot: $png ($size) from $html"
