#!/bin/sh
# Writes EmbeddedMigrations.swift into $2 from the migration files under $1 (protocol/sql):
# $1/NNNN_name.sql for PostgreSQL and $1/sqlite/NNNN_name.sql for SQLite, in file-name order.
# Called by Plugins/MigrationsPlugin before every build; rewrites the file only when it changes.
# Each file becomes a raw string literal, byte for byte (the checksum the runner records is
# computed from this text).
set -eu
dir=$1
out=$2
mkdir -p "$out"
tmp="$out/EmbeddedMigrations.swift.tmp"

emit() { # $1: Swift property name, $2: directory
  echo "    static let $1: [(file: String, sql: String)] = ["
  for f in $(ls "$2" 2>/dev/null | grep -E '^[0-9]{4}_[A-Za-z0-9_]+\.sql$' | sort); do
    if grep -q '"""#####' "$2/$f"; then echo "error: $2/$f contains the embedding delimiter" >&2; exit 1; fi
    echo "        (\"$f\", #####\"\"\""
    cat "$2/$f"
    # The literal ends before the newline that precedes its closing delimiter: one added line
    # break keeps the file's own final newline (or its absence) exact.
    printf '\n'
    echo "\"\"\"#####),"
  done
  echo "    ]"
}

{
  echo "// Generated from protocol/sql by scripts/embed-migrations.sh; do not edit."
  echo "/// The migration files, embedded at build time."
  echo "enum EmbeddedMigrations {"
  emit postgres "$dir"
  emit sqlite "$dir/sqlite"
  echo "}"
} > "$tmp"
if cmp -s "$tmp" "$out/EmbeddedMigrations.swift" 2>/dev/null; then rm "$tmp"; else mv "$tmp" "$out/EmbeddedMigrations.swift"; fi
