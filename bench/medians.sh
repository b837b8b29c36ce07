# Sourced by the bench scripts: the median rate and p99 of each scenario from a results file of
# lines `SCENARIO RPS P99` (P99 as wrk prints it: 850.00us, 12.34ms, 1.02s).
#   print_medians RESULTS WIDTH SCENARIO...
print_medians() {
    local results=$1 width=$2 scenario
    shift 2
    for scenario in "$@"; do
        awk -v s="$scenario" '$1==s {print $2}' "$results" | sort -n | awk -v s="$scenario" -v w="$width" \
            '{v[NR]=$1} END {printf "  %-*s rps %s", w, s, v[int((NR+1)/2)]}'
        awk -v s="$scenario" '$1==s {v=$3; f=1; if (v ~ /us$/) f=0.001; else if (v ~ /ms$/) f=1; else if (v ~ /s$/) f=1000;
            gsub(/[a-z]+$/, "", v); print v * f}' "$results" | sort -n |
            awk '{v[NR]=$1} END {printf "  p99 %s ms\n", v[int((NR+1)/2)]}'
    done
}
