# Shared by the benchmark scripts (sourced from the repository root).

# The cl100k_base rank file, exported from npm's tiktoken, into $1.
write_cl100k_ranks() {
  node tools/npm/tiktoken_reference.js ranks cl100k_base >"$1"
}

# The benchmark text into $1: the system's license texts and this repository's sources, prose
# and code.
write_bench_text() {
  cat /usr/share/common-licenses/* $(git ls-files '*.cc' '*.h' '*.proto' '*.md' '*.sh') >"$1"
}

# The median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
