#!/bin/sh
# topic-init: provision the topic registry (workers/topics.py) on the production Kafka.
# `streamcrawl provision` is idempotent: it creates missing topics and reports drift without
# touching data. Retried a few times because a freshly healthy KRaft broker may still
# refuse CreateTopics for a moment.
set -eu

attempts="${TOPIC_INIT_ATTEMPTS:-10}"
n=1
while :; do
    if streamcrawl provision "$@"; then
        exit 0
    fi
    if [ "$n" -ge "$attempts" ]; then
        echo "topic-init: 'streamcrawl provision' failed $n times, giving up" >&2
        exit 1
    fi
    echo "topic-init: attempt $n/$attempts failed, retrying in 3 s" >&2
    n=$((n + 1))
    sleep 3
done
