#!/bin/sh
# A CI job for Bay: build once, deploy anywhere.
#
# It builds an artifact (a tar.gz of a tiny HTTP server that answers with its build id), computes its
# sha256, registers it as a build, deploys that build to the staging group and waits until the
# deployment succeeded, then deploys the *same build id* to production (a canary with an analysis,
# rolled back by the deployer on its own if the analysis fails). Any CI runs it: it needs only sh,
# tar, sha256sum (or shasum) and the `bay` CLI pointed at the platform:
#
#   BAY_GATEWAY_URL=http://bay.example:8080 BAY_TOKEN=<an operator token> examples/ci-deploy.sh
#
# Exit codes are bay's: 0 ok, 3 another deployment runs (409), 5 Bay unavailable,
# 6 not done within the timeout, 7 the deployment failed (and was rolled back).
set -eu

BAY=${BAY:-bay}
APP=${APP:-hello}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}
BUILD_ID=${BUILD_ID:-$APP-$COMMIT}
BRANCH=${BRANCH:-$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)}
# where artifacts are kept: a directory every agent reads (file://), or serve it over http(s)
ARTIFACT_DIR=${ARTIFACT_DIR:-/tmp/bay-artifacts}
STAGING_CLUSTER=${STAGING_CLUSTER:-staging}
STAGING_GROUP=${STAGING_GROUP:-$APP-staging}
PRODUCTION_CLUSTER=${PRODUCTION_CLUSTER:-production}
PRODUCTION_GROUP=${PRODUCTION_GROUP:-$APP}
TIMEOUT=${TIMEOUT:-600}

# ---- build ----
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app"
cat > "$work/app/server.py" <<'PY'
"""Answers every GET with the build it runs (the BUILD file beside it); GET /health for the check."""
import http.server
import os

BUILD = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "BUILD")).read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else f"{BUILD}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT0"])), Handler).serve_forever()
PY
echo "$BUILD_ID" > "$work/app/BUILD"
mkdir -p "$ARTIFACT_DIR"
artifact="$ARTIFACT_DIR/$BUILD_ID.tar.gz"
tar -czf "$artifact" -C "$work/app" server.py BUILD
chmod 0644 "$artifact"
if command -v sha256sum >/dev/null 2>&1; then
  sha256=$(sha256sum "$artifact" | cut -d' ' -f1)
else
  sha256=$(shasum -a 256 "$artifact" | cut -d' ' -f1)
fi
echo "built $artifact (sha256 $sha256)"

# ---- register it, once ----
"$BAY" build register --id "$BUILD_ID" --artifact "file://$artifact" --sha256 "$sha256" --extract \
  --cmd 'python3 server.py' --commit "$COMMIT" --branch "$BRANCH"

# ---- deploy: the group is created on its first run, then each build is a deployment ----
deploy() {  # deploy GROUP CLUSTER [bay deploy options...]
  group=$1 cluster=$2
  shift 2
  if "$BAY" get group "$group" >/dev/null 2>&1; then
    "$BAY" deploy "$group" --build "$BUILD_ID" --reason "ci: $BRANCH@$COMMIT" --wait --timeout "$TIMEOUT" "$@"
  else
    "$BAY" apply -f - <<YAML
name: $group
service: $group
cluster: $cluster
build: $BUILD_ID
instances: 2
ports:
  - name: http
health_check:
  protocol: http
  path: /health
YAML
    "$BAY" scale "$group" 2 --wait --timeout "$TIMEOUT"
  fi
}

deploy "$STAGING_GROUP" "$STAGING_CLUSTER"
# staging succeeded: the same build goes to production, a quarter of it first, checked for a minute
deploy "$PRODUCTION_GROUP" "$PRODUCTION_CLUSTER" \
  --step share=0.25 --step 'analysis=60:failed_tasks<=0,restarts<=0' --step share=0.5 --step pause=30
echo "$BUILD_ID runs in $STAGING_GROUP ($STAGING_CLUSTER) and $PRODUCTION_GROUP ($PRODUCTION_CLUSTER)"
