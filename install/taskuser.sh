#!/usr/bin/env bash
# The account local tasks run as (BAY_TASK_USER, default bay-task): a system user with its own group,
# no home and no login shell. Each task runs with a uid of its own (BAY_TASK_UIDS) in this group.
# Created only where setup runs as root; elsewhere Bay cannot switch users anyway (it says so).
set -u
user="${BAY_TASK_USER:-bay-task}"
id -u "$user" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root, so no $user account: tasks will run as $(id -un) (see README, Task isolation)"
  exit 0
fi
if command -v useradd >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
elif command -v adduser >/dev/null 2>&1; then  # busybox / Alpine
  addgroup -S "$user" && adduser -S -D -H -h /nonexistent -s /sbin/nologin -G "$user" "$user"
else
  echo "warning: neither useradd nor adduser: create the account $user by hand"; exit 0
fi
echo "created the task account $user"
