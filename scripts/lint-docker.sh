#!/usr/bin/env bash
# Lints docker-compose.yml (dclint) and Dockerfile (dockerfilelint).
# Both tools are devDependencies; warnings count as failures.
# Exit status: 0 when both are clean, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

bin=node_modules/.bin
status=0

for tool in dclint dockerfilelint; do
  if [ ! -x "$bin/$tool" ]; then
    echo "lint-docker: $bin/$tool not found (run npm ci first)" >&2
    exit 1
  fi
done

echo "dclint docker-compose.yml"
"$bin/dclint" docker-compose.yml --max-warnings 0 --no-color || status=1

echo "dockerfilelint Dockerfile"
"$bin/dockerfilelint" Dockerfile || status=1

if [ $status -eq 0 ]; then
  echo "lint-docker: ok"
else
  echo "lint-docker: problems found" >&2
fi
exit $status
