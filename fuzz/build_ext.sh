#!/usr/bin/env bash
# build_ext.sh PYTHON OUT_DIR: builds the C record decoder (bam_assets/reading/bam/_records.c) a
# second time, for fuzzing only, and prints the path of the module. clang-14 (Debian's clang-14
# and libclang-rt-14-dev; gcc cannot emit libFuzzer's coverage), AddressSanitizer and
# UndefinedBehaviorSanitizer, and -fsanitize=fuzzer-no-link: the coverage without libFuzzer's
# main. The sanitizer runtimes are not linked in (an extension module cannot bring them): the
# fuzzer runs with LD_PRELOAD of atheris' asan_with_fuzzer.so (ASan, UBSan and libFuzzer, the
# LLVM ABI that clang-14 emits). The -O2 gcc build that pip makes is untouched.
set -euo pipefail
python=${1:?python}
out=${2:?output folder}
source=$(cd "$(dirname "$0")/.." && pwd)/bam_assets/reading/bam/_records.c
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
mkdir -p "$out"
clang-14 -shared -fPIC -g -O1 -fno-omit-frame-pointer \
  -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined \
  -fsanitize=float-divide-by-zero,implicit-integer-truncation,local-bounds \
  -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
  -I"$include" "$source" -o "$out/_records$suffix"
echo "$out/_records$suffix"
