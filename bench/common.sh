# shellcheck shell=bash disable=SC2034,SC2012  # QB_* variables are read by the scripts that source this file
# Shared helpers for the bench/ scripts (compare, loaded, roofline). Source it:
#   . "$(dirname "$0")/common.sh"
# Everything here is prefixed qb_ (functions) or QB_ (variables).
#
# Environment:
#   QFIT_BIN     the qfit binary (default: build/release/qfit, built with make if missing)
#   PEER         directory with the llama.cpp peer tools (peer-bench, ...); default
#                ${PEER_HOME:-$HOME/.cache/qfit-peer}/build/bin
#   QFIT_SHARED  the shared data folder (default: ../shared next to the repository)
#   QB_MODELS    cache folder for generated models (default: build/bench-models)

QB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QB_MODELS=${QB_MODELS:-$QB_ROOT/build/bench-models}
QB_SHARED_F32_NAME=kjv-llama-7m-f32.gguf

qb_die() { printf '%s: error: %s\n' "${QB_PROG:-bench}" "$*" >&2; exit 1; }
qb_warn() { printf '%s: warning: %s\n' "${QB_PROG:-bench}" "$*" >&2; }
qb_log() { printf '%s: %s\n' "${QB_PROG:-bench}" "$*" >&2; }

# ---- cleanup: qb_on_exit 'command' queues a command for EXIT/INT/TERM ----------
QB_CLEANUP=()
qb_on_exit() { QB_CLEANUP+=("$1"); }
qb_run_cleanup() {
    local i
    for ((i = ${#QB_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${QB_CLEANUP[$i]}" || true
    done
    QB_CLEANUP=()
}
# The bounded run in progress (qb_run_bounded), stopped by the cleanup.
QB_CHILD=''
qb_kill_child() {
    [[ -n $QB_CHILD ]] || return 0
    kill -TERM "$QB_CHILD" 2>/dev/null || true
    wait "$QB_CHILD" 2>/dev/null || true
    QB_CHILD=''
}
qb_on_exit qb_kill_child
trap 'qb_run_cleanup' EXIT
trap 'qb_run_cleanup; trap - INT; kill -INT $$' INT
trap 'qb_run_cleanup; trap - TERM; kill -TERM $$' TERM

# A private temporary folder, removed on exit. Sets QB_TMP.
qb_mktemp() {
    QB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qfit-bench.XXXXXX")
    qb_on_exit "rm -rf '$QB_TMP'"
}

# ---- tools -------------------------------------------------------------------
# Sets QB_QFIT to a runnable qfit binary; builds the release binary if needed.
qb_find_qfit() {
    if [[ -n ${QFIT_BIN:-} ]]; then
        [[ -x $QFIT_BIN ]] || qb_die "QFIT_BIN=$QFIT_BIN is not an executable"
        QB_QFIT=$QFIT_BIN
        return
    fi
    QB_QFIT=$QB_ROOT/build/release/qfit
    if [[ ! -x $QB_QFIT ]]; then
        qb_log "building $QB_QFIT (make -j2 release)"
        make -C "$QB_ROOT" -j2 release >&2 || qb_die "make release failed"
    fi
    [[ -x $QB_QFIT ]] || qb_die "no qfit binary at $QB_QFIT"
}

# qb_qfit_has CMD: true when this qfit build provides the subcommand.
qb_qfit_has() {
    local out
    out=$("$QB_QFIT" "$1" --help 2>&1) && return 0
    [[ $out != *"not available in this build"* && $out != *"unknown command"* ]]
}

# Sets QB_PEER to the directory of the llama.cpp peer tools.
qb_find_peer() {
    local dir=${PEER:-${PEER_HOME:-$HOME/.cache/qfit-peer}/build/bin}
    if [[ ! -x $dir/peer-bench ]]; then
        qb_die "the llama.cpp peer tools are not built (no $dir/peer-bench).
  Build them with:   bash $(qb_shared_dir_hint)/peer/setup.sh
  then:              export PEER=\${PEER_HOME:-\$HOME/.cache/qfit-peer}/build/bin
  (or set PEER to the folder holding peer-bench)"
    fi
    QB_PEER=$(cd "$dir" && pwd)
}

# qb_build_peer_tool NAME: builds bench/peer_NAME.c (a llama.cpp harness: peer_depth.c, pp/tg
# after D cached tokens, which the peer's peer-bench cannot do; peer_batched.c, N sequences in
# one batch) against the peer's headers, libraries and harness helpers into
# build/bench/peer-NAME; prints its path. Needs qb_find_peer first.
qb_build_peer_tool() {
    local name=$1 home inc src out
    home=$(cd "$QB_PEER/../.." && pwd)
    inc=$home/vendor/include
    src=$(qb_shared_dir_hint)/peer/src
    out=$QB_ROOT/build/bench/peer-$name
    [[ -f $inc/llama.h ]] || qb_die "no llama.cpp headers at $inc (run bash $(qb_shared_dir_hint)/peer/setup.sh)"
    [[ -f $src/peer_common.c ]] || qb_die "no peer harness sources at $src (set QFIT_SHARED)"
    if [[ ! -x $out || $QB_ROOT/bench/peer_$name.c -nt $out ]]; then
        mkdir -p "$(dirname "$out")"
        qb_log "building $out"
        cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -I"$inc" -I"$src" \
            "$QB_ROOT/bench/peer_$name.c" "$src/peer_common.c" -o "$out" \
            -L"$QB_PEER/../lib" -lllama -lggml -lggml-base -Wl,-rpath,"$(cd "$QB_PEER/../lib" && pwd)" -ldl -lm -lpthread \
            || qb_die "building peer-$name failed"
    fi
    printf '%s\n' "$out"
}
# Sets QB_PEER_DEPTH / QB_PEER_BATCHED / QB_PEER_IMATRIX (bench/peer_imatrix.c: llama-imatrix and
# llama-quantize --imatrix, used to make tests/data/imatrix).
qb_build_peer_depth() { QB_PEER_DEPTH=$(qb_build_peer_tool depth); }
qb_build_peer_batched() { QB_PEER_BATCHED=$(qb_build_peer_tool batched); }
qb_build_peer_imatrix() { QB_PEER_IMATRIX=$(qb_build_peer_tool imatrix); }

# The ggml CPU backend library for an ISA name (haswell = AVX2, zen4, ...).
qb_peer_backend_lib() {
    local lib=$QB_PEER/../lib/libggml-cpu-$1.so
    [[ -f $lib ]] || qb_die "no ggml CPU variant '$1' at $lib (have: $(cd "$QB_PEER/../lib" 2>/dev/null && ls libggml-cpu-*.so 2>/dev/null | sed 's/libggml-cpu-//; s/\.so//' | tr '\n' ' '))"
    (cd "$(dirname "$lib")" && printf '%s/%s\n' "$(pwd)" "$(basename "$lib")")
}

# The shared data folder (QFIT_SHARED, default ../shared).
qb_shared_dir_hint() { realpath -m "${QFIT_SHARED:-$QB_ROOT/../shared}"; }
qb_find_shared_model() {
    local d
    d=$(qb_shared_dir_hint)
    QB_SHARED_F32=$d/models/$QB_SHARED_F32_NAME
    [[ -f $QB_SHARED_F32 ]] || qb_die "shared model not found: $QB_SHARED_F32 (set QFIT_SHARED to the shared folder)"
}

# Builds build/bench/bandwidth from bench/bandwidth.c when missing or older; sets QB_BW.
qb_build_bandwidth() {
    QB_BW=$QB_ROOT/build/bench/bandwidth
    local src=$QB_ROOT/bench/bandwidth.c
    if [[ ! -x $QB_BW || $src -nt $QB_BW ]]; then
        mkdir -p "$(dirname "$QB_BW")"
        qb_log "building $QB_BW"
        "${CC:-cc}" -O2 -march=native -pthread "$src" -o "$QB_BW" >&2 || qb_die "cannot build $src"
    fi
}

# ---- machine facts -----------------------------------------------------------
qb_cpu_model() {
    local m
    m=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
    [[ -n $m ]] || m=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')
    printf '%s\n' "${m:-unknown}"
}
qb_ncpu() { getconf _NPROCESSORS_ONLN 2>/dev/null || nproc; }
qb_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
qb_git_rev() {
    local r
    r=$(git -C "$QB_ROOT" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
    git -C "$QB_ROOT" diff --quiet HEAD 2>/dev/null || r="$r+dirty"
    printf '%s\n' "$r"
}
# Free bytes on the file system holding a path.
qb_free_bytes() { df -P -B1 "$1" | awk 'NR == 2 {print $4}'; }
qb_mem_avail_bytes() { awk '/^MemAvailable:/ {printf "%.0f\n", $2 * 1024}' /proc/meminfo; }
qb_file_bytes() { stat -c %s "$1"; }
# Human-readable size, binary units as llama-bench prints them.
qb_human() {
    awk -v b="$1" 'BEGIN {
        if (b >= 2^30) printf "%.2f GiB\n", b / 2^30;
        else if (b >= 2^20) printf "%.2f MiB\n", b / 2^20;
        else printf "%.1f KiB\n", b / 2^10 }'
}
# Reads a file once so that both tools find it in the page cache.
qb_warm_file() { cat "$1" >/dev/null; }

# Does the load average say the machine is busy (1-min load > 0.5 per... ncpu)?
qb_busy_note() {
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(qb_ncpu)" 'BEGIN {
        if (l > 0.25 * n) printf "machine NOT idle (1-min load %.2f on %d CPUs): timings are unreliable\n", l, n;
        else printf "idle (1-min load %.2f on %d CPUs)\n", l, n }'
}

# ---- numbers -----------------------------------------------------------------
# qb_median V1 V2 ...: the median (mean of the middle two for an even count);
# non-numeric values (failed runs: "-") are ignored; prints "-" when none are left.
qb_median() {
    printf '%s\n' "$@" | awk '/^[0-9.eE+-]+$/ && $1 != "-" {v[n++] = $1 + 0}
        END {
            if (!n) { print "-"; exit }
            for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j+1] = v[j]; v[j+1] = x }
            m = n % 2 ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2
            printf "%.2f\n", m }'
}
# qb_ratio A B: A/B to 2 decimals, "-" when either is missing.
qb_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^[0-9.eE+]+$/ || b !~ /^[0-9.eE+]+$/ || b + 0 == 0) { print "-"; exit }
        printf "%.2f\n", a / b }'
}
# qb_spread V1 V2 ...: "min–max" of the numeric values, "-" when none.
qb_spread() {
    printf '%s\n' "$@" | awk '/^[0-9.eE+-]+$/ {x = $1 + 0; if (!n || x < lo) lo = x; if (!n || x > hi) hi = x; n++}
        END { if (!n) print "-"; else printf "%.2f–%.2f\n", lo, hi }'
}

# qb_parse_tps FILE TEST: the mean t/s of test TEST (pp512, tg128, ...) in a
# llama-bench style output (qfit bench or peer-bench): the number before "±"
# (or "+/-") on a non-comment line that has TEST as a separate word. "-" if absent.
qb_parse_tps() {
    awk -v t="$2" '
        /^[[:space:]]*#/ { next }
        {
            line = $0
            gsub(/±/, " +/- ", line)
            n = split(line, f, /[[:space:]|:]+/)
            has = 0
            for (i = 1; i <= n; i++) if (f[i] == t) has = 1
            if (!has) next
            for (i = 2; i <= n; i++)
                if (f[i] == "+/-" && f[i-1] ~ /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/) { print f[i-1]; found = 1; exit }
        }
        END { if (!found) print "-" }' "$1"
}

# The ggml CPU variant the peer loaded, from a peer tool's output.
qb_parse_peer_variant() {
    sed -n 's/.*cpu backend \([^ ,]*\).*/\1/p' "$1" | head -n1
}

# KV cache types and flash attention of the peer's run, from its table row
# ("| ... | CPU | threads | type_k | type_v | fa | test | t/s |"): "K=f16 V=f16 fa=1".
qb_parse_peer_kv() {
    awk -F'|' '/\| CPU \|/ && NF >= 11 { gsub(/ /, ""); printf "KV cache K=%s V=%s, flash attention %s\n", $7, $8, ($9 == "1" ? "on" : "off"); exit }' "$1"
}

# ---- running -----------------------------------------------------------------
# qb_run_bounded SECONDS OUTFILE CMD...: runs CMD with a time limit, stdout+stderr
# to OUTFILE. Returns the command's status (124 on timeout); never exits the script.
qb_run_bounded() {
    local secs=$1 out=$2
    shift 2
    local rc=0
    # in the background + wait, so that a signal to the script runs its traps at once
    timeout --kill-after=10 "$secs" "$@" >"$out" 2>&1 </dev/null &
    QB_CHILD=$!
    wait "$QB_CHILD" || rc=$?
    QB_CHILD=''
    if ((rc == 124 || rc == 137)); then
        printf '# (killed after %s s)\n' "$secs" >>"$out"
        qb_warn "timed out after ${secs}s: $*"
    elif ((rc != 0)); then
        qb_warn "failed (exit $rc): $* — last lines of its output:"
        tail -n 5 "$out" | sed 's/^/    /' >&2
    fi
    return "$rc"
}

# qb_alternate ROUNDS OUTDIR FN_A FN_B [FN_C]: the tools take turns, and which one goes
# first rotates from round to round (A B C, B C A, C A B, ...), so neither always runs
# right after the other. Calls "FN_X OUTDIR/x.K" (x = a, b, c) for K = 1..ROUNDS; a
# function may be ":" to skip that side. A failing run is reported and the alternation
# goes on (its output file stays for parsing).
qb_alternate() {
    # Its locals are prefixed: the FN_X functions see the caller's variables through bash's
    # dynamic scoping, and a local named like one of them (bench/parallel's loop variable n
    # once was) would silently replace it.
    local _qa_rounds=$1 _qa_dir=$2 _qa_k _qa_j _qa_idx
    shift 2
    local _qa_fns=("$@") _qa_sides=(a b c d)
    local _qa_n=${#_qa_fns[@]}
    mkdir -p "$_qa_dir"
    for ((_qa_k = 1; _qa_k <= _qa_rounds; _qa_k++)); do
        for ((_qa_j = 0; _qa_j < _qa_n; _qa_j++)); do
            _qa_idx=$(( (_qa_j + _qa_k - 1) % _qa_n ))
            if [[ ${_qa_fns[$_qa_idx]} != : ]]; then
                "${_qa_fns[$_qa_idx]}" "$_qa_dir/${_qa_sides[$_qa_idx]}.$_qa_k" || true
            fi
        done
    done
}

# qb_collect OUTDIR SIDE TEST ROUNDS: prints the per-round t/s values of one side
# (a or b) for TEST, space separated ("-" for a failed or missing round).
qb_collect() {
    local dir=$1 side=$2 t=$3 rounds=$4 k v out=()
    for ((k = 1; k <= rounds; k++)); do
        if [[ -f $dir/$side.$k ]]; then v=$(qb_parse_tps "$dir/$side.$k" "$t"); else v=-; fi
        out+=("$v")
    done
    printf '%s\n' "${out[*]}"
}

# qb_ftype_name FILE: the quantization mix named by general.file_type (llama.cpp's
# LLAMA_FTYPE numbering), from `qfit inspect`; "?" when absent or unknown.
qb_ftype_name() {
    local ft
    ft=$("$QB_QFIT" inspect --no-tensors "$1" 2>/dev/null | awk '$1 == "general.file_type" {print $3; exit}') || true
    case $ft in
        0) echo F32 ;; 1) echo F16 ;; 2) echo Q4_0 ;; 3) echo Q4_1 ;; 7) echo Q8_0 ;; 8) echo Q5_0 ;;
        9) echo Q5_1 ;; 10) echo Q2_K ;; 11) echo Q3_K_S ;; 12) echo Q3_K_M ;; 13) echo Q3_K_L ;;
        14) echo Q4_K_S ;; 15) echo Q4_K_M ;; 16) echo Q5_K_S ;; 17) echo Q5_K_M ;; 18) echo Q6_K ;;
        25) echo IQ4_NL ;; 30) echo IQ4_XS ;; 32) echo BF16 ;; *) echo '?' ;;
    esac
}

# ---- models ------------------------------------------------------------------
# Rough bits per weight of a quantization mix (generous, for disk-space checks).
qb_bpw_estimate() {
    case ${1^^} in
        F32) echo 32 ;; F16 | BF16) echo 16 ;; Q8_0) echo 8.6 ;; Q6_K) echo 6.7 ;;
        Q5_1) echo 6.1 ;; Q5_0 | Q5_K_S) echo 5.6 ;; Q5_K_M) echo 5.8 ;;
        Q4_1) echo 5.1 ;; Q4_0 | Q4_K_S | IQ4_NL | IQ4_XS) echo 4.9 ;; Q4_K_M) echo 5.3 ;;
        Q3_K_*) echo 4.3 ;; Q2_K) echo 3.5 ;; *) echo 16 ;;
    esac
}

# Parameter count of a synth shape, from `qfit synth --list` ("1.24e+03M").
qb_shape_params() {
    "$QB_QFIT" synth --list 2>/dev/null | awk -v s="$1" '$1 == s { p = $3; sub(/M$/, "", p); printf "%.0f\n", p * 1e6; found = 1 }
        END { if (!found) exit 1 }'
}

# qb_check_space DIR BYTES WHAT: dies unless DIR's file system has BYTES plus
# 1 GiB of headroom free.
qb_check_space() {
    local dir=$1 need=$2 what=$3 free
    mkdir -p "$dir"
    free=$(qb_free_bytes "$dir")
    if awk -v f="$free" -v n="$need" 'BEGIN { exit !(f < n + 2^30) }'; then
        qb_die "not enough disk space for $what: needs about $(qb_human "$need") + 1 GiB headroom, $(qb_human "$free") free on $(df -P "$dir" | awk 'NR==2 {print $6}') (df -h $dir). Free space, or set QB_MODELS to another folder."
    fi
}

# qb_make_model SPEC: makes (if missing) the GGUF for a model spec and sets
# QB_MODEL_PATH to it (call it directly, not in $(...), so that errors stop the script).
#   shared:F32           the shared F32 model itself
#   shared:TYPE          the shared model quantized by `qfit quantize` (cached)
#   SHAPE:TYPE           `qfit synth --shape SHAPE --type TYPE` (cached)
#   /path/to/file.gguf   that file
# QB_FRESH=1 remakes cached files.
qb_make_model() {
    local spec=$1 shape type out tmp
    if [[ $spec == *.gguf ]]; then
        [[ -f $spec ]] || qb_die "model file not found: $spec"
        QB_MODEL_PATH=$spec
        return
    fi
    [[ $spec == *:* ]] || qb_die "bad model spec '$spec' (want shared:TYPE, SHAPE:TYPE or a .gguf path)"
    shape=${spec%%:*}
    type=${spec#*:}
    mkdir -p "$QB_MODELS"
    if [[ $shape == shared ]]; then
        qb_find_shared_model
        if [[ ${type^^} == F32 ]]; then QB_MODEL_PATH=$QB_SHARED_F32; return; fi
        out=$QB_MODELS/kjv-llama-7m-${type^^}.gguf
        if [[ ! -f $out || ${QB_FRESH:-0} == 1 ]]; then
            qb_qfit_has quantize || qb_die "this qfit build has no 'quantize' command yet"
            qb_log "qfit quantize $QB_SHARED_F32 -> $out (${type^^})"
            tmp=$out.part.$$
            qb_on_exit "rm -f '$tmp'"
            "$QB_QFIT" quantize "$QB_SHARED_F32" "$tmp" "$type" >&2 || qb_die "qfit quantize failed for $spec"
            mv -f "$tmp" "$out"
        fi
    else
        out=$QB_MODELS/$shape-${type^^}.gguf
        if [[ ! -f $out || ${QB_FRESH:-0} == 1 ]]; then
            qb_qfit_has synth || qb_die "this qfit build has no 'synth' command yet"
            local params bpw need
            params=$(qb_shape_params "$shape") || qb_die "unknown synth shape '$shape' (see: $QB_QFIT synth --list)"
            bpw=$(qb_bpw_estimate "$type")
            need=$(awk -v p="$params" -v b="$bpw" 'BEGIN { printf "%.0f\n", p * b / 8 * 1.05 }')
            qb_check_space "$QB_MODELS" "$need" "$spec"
            qb_log "qfit synth --shape $shape --type $type -> $out (about $(qb_human "$need"); this can take minutes)"
            tmp=$out.part.$$
            qb_on_exit "rm -f '$tmp'"
            "$QB_QFIT" synth --shape "$shape" --type "$type" "$tmp" >&2 || qb_die "qfit synth failed for $spec"
            mv -f "$tmp" "$out"
        fi
    fi
    QB_MODEL_PATH=$out
    local mem
    mem=$(qb_mem_avail_bytes)
    if [[ -n $mem ]] && (($(qb_file_bytes "$out") > mem)); then
        qb_warn "$out ($(qb_human "$(qb_file_bytes "$out")")) is larger than the available memory ($(qb_human "$mem")): the runs will measure the disk, not the engines"
    fi
}
