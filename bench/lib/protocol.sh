# The online-forecasting protocol of docs/accuracy.md ("ETTh2 and ETTm1 under the online-forecasting
# protocol"), in one place for bench/accuracy.sh and bench/schedule.sh: the first 14,400 rows of an
# ETT file, each column standardised with the mean and population standard deviation of the first
# 2,880 rows; replayed with one unscored pass over the first 3,600 rows, then online.
# Sourced after the script sets ROOT (the repository) and DATA (the shared data directory).

PROTOCOL_FILES=(ETTh2 ETTm1)

# protocol_csv NAME OUT: writes ETT file NAME's standardised protocol rows to OUT.
protocol_csv() {
    python3 "$ROOT/bench/accuracy_tools.py" zscore "$DATA/ett/$1.csv" "$2" --stats-rows 2880 --rows 14400
}

# protocol_replay CSV METRICS [FLAGS...]: rnnd replay of a protocol file (stdout: its table).
protocol_replay() {
    local csv="$1" metrics="$2"; shift 2
    "$ROOT/.build/release/rnnd" replay "$csv" --warmup-rows 3600 --metrics "$metrics" "$@"
}
