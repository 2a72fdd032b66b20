#!/bin/sh
# Starts one Redis node of the StatefulSet. The primary is whichever node
# the Sentinels name now; on the very first start no Sentinel knows one yet,
# and redis-0 is it. Each node announces its stable DNS name, which is what
# the Sentinels and Gatehouse connect to.
set -eu
me="$(hostname).redis"
primary=""
for i in 0 1 2; do
  answer=$(timeout 3 redis-cli -h "redis-sentinel-$i.redis-sentinel" -p 26379 --raw \
    sentinel get-master-addr-by-name mymaster 2>/dev/null | head -n 1) || true
  if [ -n "$answer" ]; then
    primary=$answer
    break
  fi
done
[ -n "$primary" ] || primary=redis-0.redis
set -- --dir /data --appendonly yes \
  --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" \
  --replica-announce-ip "$me"
[ "$primary" = "$me" ] || set -- "$@" --replicaof "$primary" 6379
exec redis-server "$@"
