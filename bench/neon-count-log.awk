# bench/neon-count --method log: counts the guest instructions executed between the
# marker functions (b = nc_begin's address, e = nc_end's) in a log of
#   qemu-<arch> -singlestep -d exec,nochain -D LOG prog ...
# where every translation block is one instruction and every execution of one is a
# "Trace" line ("Trace 0: 0x7f.. [cs_base/pc/flags/cflags] symbol"): the count is the
# number of lines from the begin block (included) to the end block (excluded).
# Prints one count per marker pair, then "stats nested=N unpaired=N".
BEGIN { b = num(b); e = num(e) }
function num(x) { sub(/^0x/, "", x); sub(/^0*/, "", x); return tolower(x) }
/^Trace / {
    split($4, f, "/")
    p = f[2]; sub(/^0*/, "", p)
    if (p == b) { if (on) nested++; on = 1; acc = 0 }
    if (on) {
        if (p == e) { print acc; on = 0; next }
        acc++
    }
}
END { printf "stats nested=%d unpaired=%d\n", nested, on }
