#!/usr/bin/env bash
# Installs the fieldauth C library into a prefix:
#   PREFIX/include/fieldauth.h
#   PREFIX/lib/libfieldauth.a, PREFIX/lib/libfieldauth.so (if built)
#   PREFIX/lib/pkgconfig/fieldauth.pc (static link, the default) and
#   fieldauth-shared.pc (libfieldauth.so with an rpath; if the .so was built)
#   PREFIX/lib/cmake/fieldauth/fieldauthConfig.cmake, fieldauthConfigVersion.cmake
#
# usage: ffi/pkg/install.sh PREFIX [LIB_DIR]
#   LIB_DIR holds the built libraries (default: target/release, after
#   `cargo build -p fieldauth-ffi --release`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix="${1:?usage: install.sh PREFIX [LIB_DIR]}"
libdir="${2:-$root/target/release}"
version="$(sed -n 's/^#define FIELDAUTH_VERSION_STRING "\(.*\)"$/\1/p' "$root/include/fieldauth.h")"
[ -n "$version" ] || { echo "install.sh: no version in include/fieldauth.h" >&2; exit 1; }
[ -f "$libdir/libfieldauth.a" ] || { echo "install.sh: $libdir/libfieldauth.a not built" >&2; exit 1; }
mkdir -p "$prefix" && prefix="$(cd "$prefix" && pwd)"

install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/fieldauth"
install -m 644 "$root/include/fieldauth.h" "$prefix/include/"
install -m 644 "$libdir/libfieldauth.a" "$prefix/lib/"
if [ -f "$libdir/libfieldauth.so" ]; then
    install -m 755 "$libdir/libfieldauth.so" "$prefix/lib/"
fi
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" \
    "$here/fieldauth.pc.in" > "$prefix/lib/pkgconfig/fieldauth.pc"
if [ -f "$libdir/libfieldauth.so" ]; then
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" \
        "$here/fieldauth-shared.pc.in" > "$prefix/lib/pkgconfig/fieldauth-shared.pc"
fi
install -m 644 "$here/fieldauthConfig.cmake" "$prefix/lib/cmake/fieldauth/"
sed -e "s|@VERSION@|$version|g" "$here/fieldauthConfigVersion.cmake.in" \
    > "$prefix/lib/cmake/fieldauth/fieldauthConfigVersion.cmake"
echo "installed fieldauth $version into $prefix"
