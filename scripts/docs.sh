#!/usr/bin/env bash
# Writes the man pages and shell completions a built tunnel-router makes of its own command table and policy schema:
#   scripts/docs.sh BIN OUTDIR
#     OUTDIR/man/tunnel-router.8, OUTDIR/man/tunnel-router.json.5     (roff, rendered by scdoc; not compressed)
#     OUTDIR/completions/tunnel-router.bash, OUTDIR/completions/_tunnel-router (zsh)
# BIN must run on this machine. scdoc comes from scripts/deps.sh build. On failure: one line on stderr, exit 1.
set -uo pipefail
fail() { echo "docs.sh: $*" >&2; exit 1; }
[ $# = 2 ] || fail "usage: scripts/docs.sh BIN OUTDIR"
bin=$1 out=$2
[ -x "$bin" ] || fail "$bin is not an executable file"
command -v scdoc >/dev/null || fail "scdoc is not installed (scripts/deps.sh build installs it)"
mkdir -p "$out/man" "$out/completions" || fail "cannot create $out/man and $out/completions"
err=$(mktemp) || fail "cannot create a temporary file"
trap 'rm -f "$err"' EXIT

# One page or script: the binary's text through an optional renderer into FILE, all or nothing.
emit() {
    local file=$1; shift
    if ! "$@" >"$file.new" 2>"$err"; then
        rm -f "$file.new"
        local why; why=$(tr '\n' ' ' <"$err" | sed 's/ *$//')
        fail "$(basename "$file"): ${why:-'$*' failed}"
    fi
    mv "$file.new" "$file"
}
render() { "$bin" manpage "$1" | scdoc; }
emit "$out/man/tunnel-router.8" render 8
emit "$out/man/tunnel-router.json.5" render 5
emit "$out/completions/tunnel-router.bash" "$bin" completion bash
emit "$out/completions/_tunnel-router" "$bin" completion zsh
