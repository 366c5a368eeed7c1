# shellcheck shell=bash
# The dev settings in .agenthub-dev/env, shared by scripts/dev-up, scripts/test and
# scripts/agenthub (sourced, not run).

# Export each KEY=value of FILE unless KEY is already in the environment: the caller's
# environment wins (`PORT=3001 scripts/dev-up`). Values are taken literally, never evaluated.
load_dev_env() {
  local line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ && "$line" == *=* ]] || continue
    [[ -n "${!key+set}" ]] || export "$key=${line#*=}"
  done <"$1"
}

# The name of this clone's PostgreSQL database and role: agenthub_ and 8 hex digits of a hash
# of the clone's absolute path, so two clones on one machine never share (or reset) them.
dev_db_name() {
  printf 'agenthub_%s\n' "$(printf '%s' "$1" | sha256sum | cut -c1-8)"
}

# The env file of a new clone at ROOT: fresh secrets, its own database and role.
new_dev_env() {
  local name
  name="$(dev_db_name "$1")"
  cat <<ENV
JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
POSTGRES_HOST=127.0.0.1
POSTGRES_PORT=5432
POSTGRES_DB=$name
POSTGRES_USER=$name
POSTGRES_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
HOST=127.0.0.1
PORT=3000
ENV
}
