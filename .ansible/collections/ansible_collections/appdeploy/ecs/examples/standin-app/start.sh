#!/bin/sh
# busybox httpd in the foreground on the app port; /app/wiring is a CGI script (see www/cgi-bin/wiring).
set -eu
PORT="${PORT:-8080}"
echo "stand-in app listening on :${PORT} (health: /app/dispatch/health)"
exec httpd -f -v -p "0.0.0.0:${PORT}" -h /www -c /dev/null
