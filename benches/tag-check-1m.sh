#!/usr/bin/env bash
# Throughput and memory of `tagcast tag check --file` on 1,000,000 tags.
#
#   benches/tag-check-1m.sh            # builds the release binary first
#
# Needs hyperfine and GNU time (Debian packages `hyperfine`, `time`).
# Prints hyperfine's timing of 10 runs and the peak resident memory of one
# run with 1,000,000 tags and with 100,000 tags: equal peaks show that the
# command streams (constant memory).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/tagcast
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Deterministic valid tags of every stage, api-versions 0.0.0-3.20.9.
awk 'BEGIN {
  split("production staging development demo", st, " ");
  srand(7);
  for (i = 0; i < 1000000; i++) {
    printf "%d.%d.%d-%s-%02d%02d%02d-%02d%02d%02d\n",
      int(rand()*4), int(rand()*21), int(rand()*10), st[1 + int(rand()*4)],
      int(rand()*100), 1 + int(rand()*12), 1 + int(rand()*28),
      int(rand()*24), int(rand()*60), int(rand()*60);
  }
}' > "$dir/1m.txt"
head -n 100000 "$dir/1m.txt" > "$dir/100k.txt"

"$bin" tag check --file "$dir/1m.txt"
hyperfine --warmup 2 --runs 10 "$bin tag check --file $dir/1m.txt"
for f in 100k 1m; do
  /usr/bin/time -f "$f tags: peak RSS %M KiB, %e s" "$bin" tag check --file "$dir/$f.txt" > /dev/null
done
