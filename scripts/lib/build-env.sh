# Sourced by scripts/ and bench/ before they build. Package.swift compiles the numeric kernels for
# the CPU named in RNND_TARGET_CPU, and builds a portable binary without it (so that RNNCore stays
# usable as a dependency of other packages, which SwiftPM refuses with unsafe flags). This
# project's own builds name Haswell (AVX2 and FMA) when the CPU has both and nothing else was
# chosen; RNND_TARGET_CPU=x86-64 (or empty) builds portably.
if [[ -z ${RNND_TARGET_CPU+set} ]] && [[ $(uname -m) == x86_64 ]] \
    && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; then
    export RNND_TARGET_CPU=haswell
fi
