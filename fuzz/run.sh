#!/usr/bin/env bash
# Run every daxray fuzz target for SECONDS each (default 30) and print one line per target.
#   bash fuzz/run.sh [SECONDS]
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Seeds come from the committed fixtures (made here, under
# fuzz/seeds/, not committed); the growing corpus lives in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
targets=(pmem_header claims image_bytes ext4_metadata jbd2_recovery xfs_metadata xlog_recovery)

# Seeds.
rm -rf seeds && mkdir -p seeds
for t in "${targets[@]}"; do mkdir -p "seeds/$t" "corpus/$t"; done
# pmem_header / image_bytes: a kernel-made NVDIMM_PFN_INFO block at byte 4096 of 8 KiB.
for f in ../fixtures/pmem/pfn-info-*.bin; do
    n=$(basename "$f" .bin)
    { head -c 4096 /dev/zero; cat "$f"; } > "seeds/pmem_header/$n"
done
# image_bytes: the first 256 KiB of each fixture (superblocks, group descriptors, AG headers),
# bare and inside a namespace header.
for f in ../fixtures/ext4/*.img.gz ../fixtures/xfs/*.img.gz; do
    n=$(basename "$(dirname "$f")")-$(basename "$f" .img.gz)
    gzip -dc "$f" | head -c 262144 > "seeds/image_bytes/$n" || true
done
# claims: one of each shape.
printf '{"path":"/a","offset":0,"len":4096,"sha256":"%064d"}\n{"path":"/b","offset":8192,"len":1,"sha256":"%064d","ino":12,"seq":3}\n' 0 0 \
    > seeds/claims/two
# patch-based targets: a few patches (offset u32 LE, len u8, bytes).
for t in ext4_metadata jbd2_recovery xfs_metadata xlog_recovery; do
    printf '\x00\x04\x00\x00\x04\xff\xff\xff\xff' > "seeds/$t/one-patch"
    printf '\x00' > "seeds/$t/nothing"
done

cargo +nightly fuzz build -O >/dev/null
status=0
for t in "${targets[@]}"; do
    log=$(mktemp)
    if cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 >"$log" 2>&1; then
        line=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1 || true)
        echo "fuzz $t: ok: ${line:-no stats}"
    else
        status=1
        echo "fuzz $t: FAILED (crash, timeout or leak): see fuzz/artifacts/$t/"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 5 || true
    fi
    rm -f "$log"
done
exit "$status"
