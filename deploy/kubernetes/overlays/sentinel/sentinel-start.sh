#!/bin/sh
# Starts one Sentinel. It monitors the primary the other Sentinels name, or
# redis-0 on the very first start. Sentinel rewrites its config file as it
# learns the topology, so the file lives on a writable volume of its own.
set -eu
me="$(hostname).redis-sentinel"
primary=""
for i in 0 1 2; do
  peer="redis-sentinel-$i.redis-sentinel"
  [ "$peer" = "$me" ] && continue
  answer=$(timeout 3 redis-cli -h "$peer" -p 26379 --raw \
    sentinel get-master-addr-by-name mymaster 2>/dev/null | head -n 1) || true
  if [ -n "$answer" ]; then
    primary=$answer
    break
  fi
done
[ -n "$primary" ] || primary=redis-0.redis
# resolve-hostnames must come before a monitor line that names a host.
cat >/sentinel/sentinel.conf <<CONF
port 26379
dir /sentinel
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me
sentinel monitor mymaster $primary 6379 2
sentinel auth-pass mymaster $REDIS_PASSWORD
sentinel down-after-milliseconds mymaster 5000
sentinel failover-timeout mymaster 60000
sentinel parallel-syncs mymaster 1
CONF
exec redis-sentinel /sentinel/sentinel.conf
