#!/usr/bin/env bash
# run_fuzz.sh SECONDS SEED [libFuzzer options]: one fuzzing session of fuzz_decoder.py under
# ASan and UBSan, in one process. Uses build/fuzz/: site (atheris), seeds (make_seeds.py), corpus
# (grows from session to session; CORPUS overrides), artifacts (the input of a finding).
set -euo pipefail
seconds=${1:?seconds}
seed=${2:?seed}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/build/fuzz
python=${PYTHON:-$root/.venv/bin/python}
corpus=${CORPUS:-$work/corpus}
mkdir -p "$corpus" "$work/artifacts"
export PYTHONPATH=$root:$work/site
module=$("$root/fuzz/build_ext.sh" "$python" "$work/asan")
export BAM_RECORDS_SO=$module
export LD_PRELOAD=$("$python" -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so
# detect_leaks=0: CPython keeps interned objects and arenas until exit, and LeakSanitizer would
# report them all. max_allocation_size_mb + allocator_may_return_null: htslib (not instrumented)
# allocates up to 4 GB for a corrupt l_text or block_size before reading; it then gets NULL and
# refuses the file at once, as htslib's own fuzz build limits allocations (FUZZ_ALLOC_LIMIT).
export ASAN_OPTIONS=detect_leaks=0:max_allocation_size_mb=1024:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONWARNINGS=ignore
exec "$python" "$root/fuzz/fuzz_decoder.py" "$corpus" "$work/seeds" \
  -max_total_time="$seconds" -seed="$seed" -max_len=20000 -timeout=30 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@"
