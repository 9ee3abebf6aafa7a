#!/usr/bin/env bash
# Short, bounded fuzz run of every daxray fuzz target (libFuzzer via cargo-fuzz).
#   bash .ci/fuzz.sh                 # every target, FUZZ_SECONDS (default 25) each
#   FUZZ_SECONDS=300 bash .ci/fuzz.sh sparse_xfs xlog_recovery   # longer, chosen targets
# Uses `cargo +nightly` when a nightly toolchain is installed, else the stable toolchain with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). Installs cargo-fuzz when absent. Seeds are made
# at run time (mkfs-made images, the e2fsprogs test images, kernel-made dirty images when run as
# root) in their sparse form (fuzz/tools/mkseed.py). Fails when a target crashes, leaks memory
# past the limit, or one input runs longer than 10 s; prints the figures each target reached.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${FUZZ_SECONDS:-15}
all_targets=(pmem_header claims image_bytes ext4_metadata jbd2_recovery xfs_metadata xlog_recovery
             sparse_open sparse_ext4 sparse_jbd2 sparse_xfs sparse_xlog)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

command -v cargo >/dev/null || { echo "fuzz.sh: cargo not found; install the Rust toolchain (rustup)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "fuzz.sh: python3 not found (apt-get install python3)" >&2; exit 2; }
if cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
    echo "fuzz.sh: nightly toolchain: $(cargo +nightly --version)"
else
    cargo=(cargo)
    export RUSTC_BOOTSTRAP=1
    echo "fuzz.sh: no nightly toolchain; stable with RUSTC_BOOTSTRAP=1: $(cargo --version)"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

# ---- seeds --------------------------------------------------------------------------------
seeds=$(mktemp -d /tmp/daxray-fuzz-seeds.XXXXXX)
mnt=""
cleanup() {
    if [ -n "$mnt" ] && mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
    [ -n "$mnt" ] && rmdir "$mnt" 2>/dev/null || true
    rm -rf "$seeds"
}
trap cleanup EXIT
mkseed() { python3 fuzz/tools/mkseed.py "$@"; }
# New inputs go to a scratch corpus (removed at exit), or to fuzz/corpus/ with FUZZ_KEEP_CORPUS=1
# (long local runs: sparse-image inputs are up to megabytes each, mind the disk).
if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then corpus_root=$root/fuzz/corpus; else corpus_root=$seeds/corpus; fi
for t in "${all_targets[@]}"; do mkdir -p "$seeds/$t" "$corpus_root/$t"; done
scratch="$seeds/scratch"
mkdir -p "$scratch/tree/d1/d2/d3" "$scratch/tree/big"
printf 'hello\n' > "$scratch/tree/small"
head -c 300000 /dev/urandom > "$scratch/tree/d1/d2/d3/large"
ln -s small "$scratch/tree/link"
ln -s "$(printf 'x%.0s' $(seq 1 200))" "$scratch/tree/longlink"
for i in $(seq 1 300); do : > "$scratch/tree/big/entry-with-a-long-name-$i"; done

ext4_seed() {   # name, mkfs options...
    local name=$1; shift
    local img="$scratch/$name.img"
    rm -f "$img"; truncate -s 8M "$img"
    if mkfs.ext4 -q -F "$@" -d "$scratch/tree" "$img" >/dev/null 2>&1; then
        for t in sparse_ext4 sparse_jbd2 sparse_open; do mkseed "$img" "$seeds/$t/$name"; done
    else
        echo "fuzz.sh: mkfs.ext4 $* failed; seed $name skipped"
    fi
    rm -f "$img"
}
if command -v mkfs.ext4 >/dev/null; then
    ext4_seed ext4-4k -b 4096
    ext4_seed ext4-1k -b 1024
    ext4_seed ext4-nojournal -b 4096 -O ^has_journal
    ext4_seed ext4-inline -b 4096 -O inline_data
    ext4_seed ext4-ext3 -b 1024 -O ^extent,^flex_bg,^metadata_csum,^64bit
else
    echo "fuzz.sh: mkfs.ext4 not found (apt-get install e2fsprogs): no ext4 seeds from mkfs"
fi

# DAXRAY_CORPUS, else shared/corpus beside the crate or beside one of its parent folders.
corpus=${DAXRAY_CORPUS:-}
if [ -z "$corpus" ]; then
    d=$root
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        if [ -d "$d/shared/corpus" ]; then corpus=$d/shared/corpus; break; fi
    done
fi
if [ -d "$corpus/e2fsprogs" ]; then
    n=0
    for d in "$corpus"/e2fsprogs/*/; do
        name=$(basename "$d")
        img="$scratch/e2fs.img"; rm -f "$img"
        if [ -f "$d/image.gz" ]; then gunzip -c "$d/image.gz" > "$img"
        elif [ -f "$d/image.bz2" ]; then bunzip2 -c "$d/image.bz2" > "$img"
        else continue; fi
        for t in sparse_ext4 sparse_jbd2 sparse_open; do mkseed "$img" "$seeds/$t/e2fsprogs-$name"; done
        n=$((n + 1))
    done
    rm -f "$scratch/e2fs.img"
    echo "fuzz.sh: $n e2fsprogs corpus images as seeds"
else
    echo "fuzz.sh: no e2fsprogs corpus at $corpus/e2fsprogs (set DAXRAY_CORPUS): fewer ext4 seeds"
fi

if command -v mkfs.xfs >/dev/null; then
    img="$scratch/xfs.img"; rm -f "$img"; truncate -s 300M "$img"
    mkfs.xfs -q -f -m reflink=0 "$img"
    for t in sparse_xfs sparse_xlog sparse_open; do mkseed "$img" "$seeds/$t/xfs-clean"; done
    if [ "$(id -u)" -eq 0 ] && mnt=$(mktemp -d /tmp/daxray-fuzz-mnt.XXXXXX) && mount -o loop "$img" "$mnt" 2>/dev/null; then
        cp -r "$scratch/tree/." "$mnt/"
        sync
        for i in $(seq 1 50); do printf 'again %s\n' "$i" >> "$mnt/small"; rm -f "$mnt/big/entry-with-a-long-name-$i"; done
        xfs_io -c fsync "$mnt/small" >/dev/null 2>&1 || sync -f "$mnt/small"
        cp --sparse=always "$img" "$scratch/xfs-dirty.img"    # a crash copy: log not checkpointed
        umount "$mnt"; rmdir "$mnt"; mnt=""
        for t in sparse_xfs sparse_xlog sparse_open; do
            mkseed "$scratch/xfs-dirty.img" "$seeds/$t/xfs-dirty"
            mkseed "$img" "$seeds/$t/xfs-unmounted"
        done
        rm -f "$scratch/xfs-dirty.img"
    else
        [ -n "$mnt" ] && rmdir "$mnt" 2>/dev/null; mnt=""
        echo "fuzz.sh: not root or loop mount failed: no kernel-made dirty XFS seed"
    fi
    rm -f "$img"
else
    echo "fuzz.sh: mkfs.xfs not found (apt-get install xfsprogs): no XFS seeds"
fi

# The committed kernel-made fixtures: images (sparse form) and namespace info blocks.
for f in fixtures/ext4/*.img.gz fixtures/xfs/*.img.gz; do
    [ -f "$f" ] || continue
    case "$f" in */ext4/*) ts="sparse_ext4 sparse_jbd2 sparse_open image_bytes";; *) ts="sparse_xfs sparse_xlog sparse_open";; esac
    gunzip -c "$f" > "$scratch/fixture.img"
    name=$(basename "$(dirname "$f")")-$(basename "$f" .img.gz)
    for t in $ts; do
        if [ "$t" = image_bytes ]; then
            # image_bytes takes flat bytes: only the small mkfs -d image fits its length limit.
            [ "$(stat -c %s "$scratch/fixture.img")" -le 8388608 ] && cp "$scratch/fixture.img" "$seeds/$t/$name"
        else
            mkseed "$scratch/fixture.img" "$seeds/$t/$name"
        fi
    done
done
rm -f "$scratch/fixture.img"
cp fixtures/pmem/*.bin "$seeds/pmem_header/" 2>/dev/null || head -c 4096 /dev/zero > "$seeds/pmem_header/zero"
cat > "$seeds/claims/two" <<'CLAIMS'
# claims made by a replay run
{"path":"/f0","ino":12,"offset":8192,"len":64,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","seq":1}
{"file":"/d/f1","offset":0,"len":4096,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
CLAIMS
rm -rf "$scratch"

# ---- run --------------------------------------------------------------------------------
echo "fuzz.sh: building the fuzz targets"
(cd fuzz && "${cargo[@]}" fuzz build -O --debug-assertions 2>&1 | tail -n 3)
# Sparse seeds are whole images (up to ~2 MiB in sparse form); other inputs stay small.
max_len() { case "$1" in sparse_*) echo 4194304;; image_bytes) echo 8388608;; *) echo 65536;; esac; }
fail=0
summary=()
for t in "${targets[@]}"; do
    log="$seeds/$t.log"
    echo "== $t: ${secs}s, seeds: $(ls "$seeds/$t" | wc -l)"
    set +e
    (cd fuzz && "${cargo[@]}" fuzz run -O --debug-assertions "$t" "$corpus_root/$t" "$seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len="$(max_len "$t")" -print_final_stats=1 >"$log" 2>&1)
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n1)
    cov=$(printf '%s' "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || true)
    ft=$(printf '%s' "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || true)
    corp=$(printf '%s' "$last" | grep -o 'corp: [0-9]*/[0-9A-Za-z]*' || true)
    line=$(printf '%-13s execs %-9s cov %-6s ft %-6s %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corp")
    if [ $rc -ne 0 ]; then
        fail=1
        line="$line  FAILED (status $rc)"
        # Lines cut short: libFuzzer prints the whole failing input as a Debug list.
        grep -E -A3 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|timeout|out-of-memory' "$log" | cut -c1-300 | head -n 30 >&2 || true
        tail -n 25 "$log" | cut -c1-300 >&2
    fi
    echo "$line"
    summary+=("$line")
done
echo
echo "fuzz.sh summary (${secs}s per target):"
printf '  %s\n' "${summary[@]}"
exit $fail
