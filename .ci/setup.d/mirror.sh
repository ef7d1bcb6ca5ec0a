# Seeds the local mirror the example builds and their tests use (no upstream is
# reachable from CI). Tests find it through FORGE_TEST_MIRROR or this default.
bash recipes/mirror/seed-debian.sh "${FORGE_TEST_MIRROR:-/var/cache/forge-test-mirror}"
