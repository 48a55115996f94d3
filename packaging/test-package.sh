#!/usr/bin/env bash
# test-package.sh: builds the Debian package from a build directory and checks it (ctest -L
# package runs it).
#
#   bash packaging/test-package.sh [BUILD_DIR]      (default <repo>/build)
#
# 1. cpack -G DEB -> BUILD_DIR/package/sctptund_<version>_<arch>.deb
# 2. Control fields (name, version, architecture, section, maintainer); Depends names the package
#    of every shared library the binary needs (dpkg-shlibdeps did its job); the maintainer scripts
#    are executable and parse.
# 3. Contents: exactly the expected files, owned by root, with their modes (/etc/sctptund 0700).
# 4. Extracted (dpkg -x): the binary runs and is stripped; --check accepts every example config,
#    with its key file rewritten to a generated key (mode 0600), and example.toml with all of its
#    commented-out keys switched on; the man pages format without a warning (man --warnings) and
#    hold no unreplaced @@PLACEHOLDER@@; systemd-analyze verify accepts the unit (no output at
#    all) and systemd-analyze security rates its exposure at most 3.0 (skipped, loudly, without
#    systemd-analyze).
# 5. A real installation with apt-get when this runs as root on a system without sctptund (no
#    package, no /usr/sbin/sctptund, no /etc/sctptund; else skipped, loudly): the files are in
#    place, man finds the pages, --check accepts the untouched example at
#    /etc/sctptund/NAME.toml with its key at /etc/sctptund/site-a-site-b.key, systemd-analyze
#    verify accepts the installed unit; then apt-get purge removes everything (an EXIT trap
#    purges too). SCTPTUND_PACKAGE_INSTALL=0 skips this step, =1 makes a skip a failure.
#
# Needs: cmake/cpack, dpkg-dev (dpkg-shlibdeps), file, binutils (readelf), man-db; optionally
# systemd (systemd-analyze).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
install_mode=${SCTPTUND_PACKAGE_INSTALL:-auto}

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "package: $*"; }
skip() { echo "package: SKIP: $*"; }

missing=()
for tool in cmake:cmake cpack:cmake dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev file:file \
            readelf:binutils man:man-db; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
((${#missing[@]} == 0)) || fail "missing tools; apt-get install ${missing[*]}"

tmp=$(mktemp -d)
installed_by_us=0
cleanup() {
  if ((installed_by_us)); then
    rm -f /etc/sctptund/pkgtest.toml /etc/sctptund/site-a-site-b.key
    apt-get -o DPkg::Lock::Timeout=600 purge -y -qq sctptund >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. Build --------------------------------------------------------------------------------
say "building the binary and the package in $build"
cmake --build "$build" --target sctptund >/dev/null
outdir=$build/package
rm -rf "$outdir"
(cd "$build" && cpack -G DEB -B "$outdir" >"$tmp/cpack.log" 2>&1) ||
  { cat "$tmp/cpack.log" >&2; fail "cpack -G DEB failed"; }
rm -rf "$outdir/_CPack_Packages"
debs=("$outdir"/sctptund_*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  fail "expected one sctptund_*.deb in $outdir: ${debs[*]}"
fi
deb=${debs[0]}
say "built $deb ($(stat -c %s "$deb") bytes)"

# --- 2. Control fields -----------------------------------------------------------------------
version=$(sed -n 's/^project(sctptund VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in CMakeLists.txt"
arch=$(dpkg --print-architecture)
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = sctptund ] || fail "Package: '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version: '$(field Version)', expected $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: '$(field Architecture)', expected $arch"
[ "$(field Section)" = net ] || fail "Section: '$(field Section)', expected net"
[[ $(field Maintainer) =~ ^.+\ \<.+@.+\>$ ]] || fail "Maintainer: '$(field Maintainer)'"
[ -n "$(field Description)" ] || fail "no Description"
depends=$(field Depends)
[ -n "$depends" ] || fail "no Depends (dpkg-shlibdeps did not run?)"
# ldd resolves the libraries; only the binary's own NEEDED ones must be in Depends.
declare -A lib_path=()
while read -r name path; do lib_path[$name]=$path; done < <(ldd "$build/sctptund" | awk '$2 == "=>" {print $1, $3}')
while read -r lib; do
  path=${lib_path[$lib]:-}
  [ -n "$path" ] || fail "the binary needs $lib, which ldd does not resolve"
  owner=""
  for candidate in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -z "$owner" ] || break
  done
  [ -n "$owner" ] || fail "no package owns $path ($lib)"
  [[ ", $depends," == *", $owner "* || ", $depends," == *", $owner,"* ]] || fail "Depends lacks $owner (for $lib): $depends"
done < <(readelf -d "$build/sctptund" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
say "control: sctptund $version $arch, section net; Depends: $depends"

dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm postrm; do
  [ -f "$tmp/control/$script" ] || fail "no $script maintainer script"
  [ "$(stat -c %a "$tmp/control/$script")" = 755 ] || fail "$script is not mode 0755"
  sh -n "$tmp/control/$script" || fail "$script does not parse"
done
[ ! -e "$tmp/control/conffiles" ] || fail "unexpected conffiles: $(cat "$tmp/control/conffiles")"

# --- 3. Contents -----------------------------------------------------------------------------
expected="\
drwx------ ./etc/sctptund/
-rw-r--r-- ./lib/systemd/system/sctptund@.service
-rwxr-xr-x ./usr/sbin/sctptund
-rw-r--r-- ./usr/share/doc/sctptund/examples/example.toml
-rw-r--r-- ./usr/share/doc/sctptund/examples/site-a.toml
-rw-r--r-- ./usr/share/doc/sctptund/examples/site-b.toml
-rw-r--r-- ./usr/share/man/man5/sctptund.toml.5
-rw-r--r-- ./usr/share/man/man8/sctptund.8"
dpkg-deb -c "$deb" >"$tmp/contents"
awk '$2 != "root/root" {print; bad = 1} END {exit bad}' "$tmp/contents" ||
  fail "entries not owned by root/root (above)"
# Every file, and the directories that are not just parents of others.
actual=$(awk '{print $1, $6}' "$tmp/contents" |
  awk '{e[NR] = $0; p[NR] = $2} END {
    for (i = 1; i <= NR; i++) {
      leaf = 1
      if (substr(p[i], length(p[i])) == "/")
        for (j = 1; j <= NR; j++) if (j != i && index(p[j], p[i]) == 1) { leaf = 0; break }
      if (leaf) print e[i]
    }}' | sort)
[ "$actual" = "$(sort <<<"$expected")" ] ||
  fail "package contents differ from the expected (< expected, > package):
$(diff <(sort <<<"$expected") <(echo "$actual") || true)"
awk '$1 ~ /^d/ && $6 != "./etc/sctptund/" && $1 != "drwxr-xr-x" {print; bad = 1} END {exit bad}' \
  "$tmp/contents" || fail "directories with unusual modes (above)"
say "contents: $(wc -l <<<"$expected") entries in place, modes and owners right"

# --- 4. Extracted ----------------------------------------------------------------------------
root=$tmp/root
dpkg -x "$deb" "$root"
bin=$root/usr/sbin/sctptund
out=$("$bin" --version) || fail "the packaged binary does not run: $out"
[ "$out" = "sctptund $version" ] || fail "--version printed '$out', expected 'sctptund $version'"
file -L "$bin" | grep -q ', stripped' || fail "the binary is not stripped: $(file -L "$bin")"

key=$tmp/keys/site-a-site-b.key
mkdir -p "$tmp/keys"
(umask 077 && "$bin" genkey >"$key")
check() {  # check FILE: --check accepts FILE without a warning
  local out
  out=$("$bin" --check -c "$1" 2>&1) || fail "--check refused $2: $out"
  [[ $out == *": valid ("* ]] || fail "--check on $2 printed: $out"
  [[ $out != *warning* ]] || fail "--check warned about $2: $out"
}
examples=("$root"/usr/share/doc/sctptund/examples/*.toml)
for f in "${examples[@]}"; do
  name=${f##*/}
  grep -q '^key_file = "/etc/sctptund/site-a-site-b.key"' "$f" || fail "$name names another key file"
  sed "s|/etc/sctptund/site-a-site-b.key|$key|" "$f" >"$tmp/$name"
  check "$tmp/$name" "the packaged example $name"
done
# example.toml shows every optional key commented out with its default: all of them switched on
# must be valid too (a renamed or removed key, or a wrong value, fails here).
sed -E 's/^# (\[|[a-z_]+ = )/\1/' "$tmp/example.toml" >"$tmp/example-all.toml"
switched_on=$(diff "$tmp/example.toml" "$tmp/example-all.toml" | grep -c '^>' || true)
((switched_on >= 30)) || fail "only $switched_on commented-out keys found in example.toml"
check "$tmp/example-all.toml" "example.toml with its $switched_on commented-out keys switched on"
say "examples: --check accepts ${examples[*]##*/} (and example.toml with $switched_on more keys)"

for page in "$root"/usr/share/man/man*/*; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || true
  [ -z "$warnings" ] || fail "man --warnings on ${page#"$root"}: $warnings"
  text=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null)
  [ -n "$text" ] || fail "${page#"$root"} formats to nothing"
  if placeholders=$(grep -n '@@[A-Z_]*@@' "$page"); then
    fail "${page#"$root"} holds unreplaced placeholders: $placeholders"
  fi
done
say "man pages: format without warnings, no placeholders"

unit=$root/lib/systemd/system/sctptund@.service
grep -q '^ExecStart=/usr/sbin/sctptund -c /etc/sctptund/%i.toml$' "$unit" || fail "unexpected ExecStart"
if command -v systemd-analyze >/dev/null; then
  # The unit as shipped, but with the binary where it was extracted (verify checks that the
  # commands exist and that man finds the Documentation= pages).
  mkdir -p "$tmp/unit"
  sed "s|/usr/sbin/sctptund|$bin|g" "$unit" >"$tmp/unit/sctptund@.service"
  out=$(MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/unit/sctptund@.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify complained: $out"
  exposure=$(systemd-analyze security --offline=true "$tmp/unit/sctptund@.service" 2>&1 |
    sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  systemd-analyze security --offline=true --threshold=30 "$tmp/unit/sctptund@.service" \
    >/dev/null 2>&1 || fail "systemd-analyze security: exposure $exposure, more than 3.0"
  say "unit: systemd-analyze verify clean; security exposure $exposure (at most 3.0)"
else
  skip "no systemd-analyze (apt-get install systemd): the unit was not verified"
fi

# --- 5. Real installation --------------------------------------------------------------------
why_not=""
if [ "$install_mode" = 0 ]; then
  why_not="SCTPTUND_PACKAGE_INSTALL=0"
elif [ "$(id -u)" -ne 0 ]; then
  why_not="not root"
elif ! command -v apt-get >/dev/null; then
  why_not="no apt-get"
elif dpkg-query -W -f='${Status}' sctptund 2>/dev/null | grep -q .; then
  why_not="a sctptund package is already known to dpkg"
elif [ -e /usr/sbin/sctptund ] || [ -e /etc/sctptund ] || [ -e /lib/systemd/system/sctptund@.service ]; then
  why_not="sctptund files are already on this system"
fi
if [ -n "$why_not" ]; then
  [ "$install_mode" != 1 ] || fail "cannot install the package: $why_not"
  skip "real installation ($why_not)"
  say "PASS (without the real installation)"
  exit 0
fi

# apt's sandbox user must be able to read the file.
mkdir -m 755 "$tmp/apt"
cp "$deb" "$tmp/apt/" && chmod 644 "$tmp/apt/${deb##*/}"
chmod 755 "$tmp"
export DEBIAN_FRONTEND=noninteractive
installed_by_us=1
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "$tmp/apt/${deb##*/}" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get install failed"; }
dpkg-query -W -f='${Status} ${Version}' sctptund | grep -q "install ok installed $version" ||
  fail "dpkg does not list sctptund $version as installed"
while read -r mode path; do
  path=${path#.}
  path=${path%/}
  [ -e "$path" ] || fail "$path is missing after the installation"
  [ "$(stat -c %A "$path")" = "$mode" ] || fail "$path has mode $(stat -c %A "$path"), expected $mode"
  [ "$(stat -c %U:%G "$path")" = root:root ] || fail "$path is not owned by root"
done <<<"$expected"
[ "$(command -v sctptund)" = /usr/sbin/sctptund ] || fail "sctptund is not /usr/sbin/sctptund on PATH"
[ "$(sctptund --version)" = "sctptund $version" ] || fail "installed sctptund --version"
for page in 8:sctptund 5:sctptund.toml; do
  where=$(man -w "${page%%:*}" "${page#*:}" 2>/dev/null) || fail "man does not find ${page#*:}(${page%%:*})"
  [[ $where == /usr/share/man/* ]] || fail "man finds ${page#*:}(${page%%:*}) at $where"
done
# The example exactly as shipped, where the unit expects a configuration and the key where the
# example names it.
install -m 600 /usr/share/doc/sctptund/examples/example.toml /etc/sctptund/pkgtest.toml
(umask 077 && sctptund genkey >/etc/sctptund/site-a-site-b.key)
out=$(sctptund --check -c /etc/sctptund/pkgtest.toml 2>&1) ||
  fail "--check refused the installed example: $out"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify sctptund@pkgtest.service 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify of the installed unit complained: $out"
fi
say "installed: files, modes, man pages in place; --check accepts /etc/sctptund/pkgtest.toml"

rm -f /etc/sctptund/pkgtest.toml /etc/sctptund/site-a-site-b.key
apt-get -o DPkg::Lock::Timeout=600 purge -y -qq sctptund >"$tmp/apt.log" 2>&1 ||
  { cat "$tmp/apt.log" >&2; fail "apt-get purge failed"; }
installed_by_us=0
status=$(dpkg-query -W -f='${Status}' sctptund 2>/dev/null || true)
[[ -z $status || $status == *not-installed ]] || fail "after the purge dpkg says: $status"
while read -r mode path; do
  path=${path#.}
  path=${path%/}
  [ ! -e "$path" ] || fail "$path is left after the purge"
done <<<"$expected"
say "purged: nothing left"
say "PASS"
