# Sourced by the benchmarks: one line per row of the goals table (issue 22),
# the same shape for every bench, also appended to $BENCH_SUMMARY when set
# (`make bench` prints them together at the end).
#
# verdict ROW WHAT VALUE GOAL [UNIT]: ROW names the table row, WHAT the
# figure ("ratio", "CPU per cycle"); UNIT defaults to × (a ratio).
verdict() {
    local row=$1 what=$2 value=$3 goal=$4 unit=${5:-×}
    local result line
    # Judged on the figure as printed (two decimals for a ratio, one for a
    # unit), so a line never reads "1.00× (goal ≤ 1.0×) FAIL".
    local digits=2
    [[ $unit == × ]] || digits=1
    result=$(awk -v v="$value" -v g="$goal" -v d="$digits" 'BEGIN { r = sprintf("%." d "f", v); print (r + 0 <= g + 0) ? "PASS" : "FAIL" }')
    if [[ $unit == × ]]; then
        line=$(printf '%s: %s: %.2f× (goal ≤ %s×) %s' "$row" "$what" "$value" "$goal" "$result")
    else
        line=$(printf '%s: %s: %.1f %s (goal ≤ %s %s) %s' "$row" "$what" "$value" "$unit" "$goal" "$unit" "$result")
    fi
    echo "$line"
    if [[ -n ${BENCH_SUMMARY:-} ]]; then echo "$line" >> "$BENCH_SUMMARY"; fi
}

# median VALUES...: the median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
