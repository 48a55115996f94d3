#!/usr/bin/env bash
# The layering of src/ (one folder, one namespace, one library): a production file includes only
# headers of its own folder and of the folders below it. Tests (*_test.cpp) and test helpers
# (test_*.hpp, *_test_*.hpp) may also use the fakes of the layers below them, which this allows
# by the same rule. Prints every include that runs up or across and fails when there is one.
#   bash src/layers_test.sh [REPO]
set -euo pipefail
repo=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$repo"

# folder: the folders its files may include besides their own (bottom to top).
declare -A below=(
  [policy]=""
  [tun]="src/base"
  [src/base]=""
  [src/crypto]="src/base"
  [src/codec]="src/base"
  [src/fec]="src/base src/crypto"
  [src/transport]="src/base src/crypto tun"
  [src/transport/udp]="src/base src/crypto src/fec src/transport tun"
  [src/transport/kernel]="src/base src/crypto src/transport tun"
  [src/gateway]="src/base src/crypto src/codec src/transport tun policy"
  [src/control]="src/base src/crypto src/codec src/fec src/transport src/transport/udp src/transport/kernel src/gateway tun policy"
  [src]="src/base src/crypto src/codec src/fec src/transport src/transport/udp src/transport/kernel src/gateway src/control tun policy"
)

bad=0 checked=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  [[ -v below[$dir] ]] || { echo "layers: $file: folder $dir has no place in the layering (add it here)"; bad=1; continue; }
  while IFS= read -r inc; do
    checked=$((checked + 1))
    target=$(dirname "$inc")
    [[ $target == "$dir" ]] && continue
    ok=0
    for allowed in ${below[$dir]}; do [[ $target == "$allowed" ]] && ok=1; done
    ((ok)) || { echo "layers: $file includes $inc: $target is not below $dir"; bad=1; }
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
done < <(find src tun policy -name '*.cpp' -o -name '*.hpp' | sort)

((checked > 100)) || { echo "layers: only $checked includes found: is $repo the checkout?"; exit 1; }
((bad == 0)) || exit 1
echo "layers: $checked includes, each within its folder or to a folder below"
