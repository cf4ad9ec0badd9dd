#!/usr/bin/env bash
# Installs the Debian packages qfit needs to build, test and fuzz. Idempotent:
# does nothing (and needs no network) when everything is already installed.
set -euo pipefail

# macOS (Apple clang): Homebrew's packages; the Makefile looks for them under
# $(brew --prefix) (openssl@3 under its own opt/ prefix). Builds `make`; the test suite
# and the NEON/qemu tools are Linux-only (see README.md).
if [ "$(uname -s)" = Darwin ]; then
  BREW_PKGS=(pkg-config pcre2 jansson openssl@3 libmicrohttpd hiredis criterion)
  command -v brew >/dev/null 2>&1 || { echo "deps: macOS needs Homebrew for: ${BREW_PKGS[*]}" >&2; exit 1; }
  command -v clang >/dev/null 2>&1 || { echo "deps: no clang: install the Xcode command line tools (xcode-select --install)" >&2; exit 1; }
  brew install "${BREW_PKGS[@]}"
  exit 0
fi

PKGS=(
  build-essential pkg-config clang      # gcc + clang builds
  libclang-rt-14-dev                    # libFuzzer / sanitizer runtimes for clang
  libcriterion-dev                      # unit tests
  libpcre2-dev                          # BPE pre-tokenizer regexes (UTF/UCP)
  libjansson-dev                        # JSON (plan --json, manifests, server)
  libssl-dev                            # OpenSSL libcrypto: SHA-256 of blobs (store, pull)
  libcurl4-openssl-dev                  # HTTP client (pull)
  libmicrohttpd-dev                     # HTTP server (qfit serve)
  libhiredis-dev redis-server           # batch queue (qfit batch/worker) and its tests' Redis
  python3-jinja2                        # reference renderer for the Jinja chat-template tests (/usr/bin/python3)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # NEON kernels, tested under qemu
  chromium                              # headless browser for the web page's tests (tests/web)
  libvulkan-dev glslc                   # Vulkan compute (src/vulkan): loader headers, GLSL -> SPIR-V
  mesa-vulkan-drivers                   # lavapipe: the Vulkan CPU driver the Vulkan tests run on
  spirv-cross                           # make check-msl: every shader must translate to Metal (MoltenVK)
  vulkan-validationlayers               # make check-vulkan-validation: the Khronos layer, sync checks on
)

# Node.js and npm run the client tests (tests/clients): Debian's packages, unless a node
# with npm is already installed (e.g. NodeSource's nodejs, which bundles npm and
# conflicts with Debian's npm package)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
