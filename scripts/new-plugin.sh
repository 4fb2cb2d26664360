#!/usr/bin/env bash
# Starts a new mcp-host plugin: copies the plugin template into DIR and renames it to NAME.
#
#   scripts/new-plugin.sh NAME DIR        e.g. scripts/new-plugin.sh acme_items ~/src/acme-items
#
# NAME becomes the library (libNAME.so; `library: NAME` in the YAML), the CMake target and
# the descriptor's name: 1-64 of a-z 0-9 _ -, starting with a letter. DIR must not exist
# yet. The template is found next to this script: ../plugins/template in a source tree, or
# ./template when installed (<prefix>/share/mcp-host/new-plugin.sh).
set -euo pipefail
usage() { echo "usage: $0 NAME DIR   (NAME: a-z 0-9 _ -, starting with a letter)" >&2; exit 2; }
[ $# -eq 2 ] || usage
name=$1 dir=$2
[[ $name =~ ^[a-z][a-z0-9_-]{0,63}$ ]] || usage
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template=""
for candidate in "$here/../plugins/template" "$here/template"; do
  if [ -f "$candidate/CMakeLists.txt" ]; then template=$(cd "$candidate" && pwd); break; fi
done
[ -n "$template" ] || { echo "$0: cannot find the plugin template next to $here" >&2; exit 1; }
if [ -e "$dir" ]; then echo "$0: $dir already exists; choose a new folder" >&2; exit 1; fi

# my_plugin -> NAME (file names, strings, targets); MY_PLUGIN -> NAME as a C macro prefix;
# MyPlugin -> NAME in CamelCase (the C++ class).
ident=${name//-/_}
upper=$(printf '%s' "$ident" | tr '[:lower:]' '[:upper:]')
camel=$(printf '%s' "$ident" | awk -F_ '{ for (i = 1; i <= NF; i++) printf "%s%s", toupper(substr($i, 1, 1)), substr($i, 2) }')

mkdir -p "$dir"
for src in "$template"/*; do
  base=$(basename "$src")
  [ -f "$src" ] || continue
  sed -e "s/MY_PLUGIN/$upper/g" -e "s/MyPlugin/$camel/g" -e "s/my_plugin/$name/g" "$src" > "$dir/${base//my_plugin/$name}"
done
cat <<MSG
Created $dir (plugin $name, from $template). Next:
  cd $dir
  cmake -S . -B build -DCMAKE_PREFIX_PATH=<mcp-host prefix, if not /usr>
  cmake --build build && ctest --test-dir build --output-on-failure
  mcp-host plugin check build/lib$name.so
MSG
