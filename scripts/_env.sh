# shellcheck shell=bash
# Shared helpers for scripts/setup, scripts/test, scripts/lint and .ci/run.
#
# Source this file; it defines:
#   PYLON_ROOT    absolute path of the checkout (wherever it was cloned)
#   PYLON_MODE    "host" when a host Python >= 3.14.2 exists, else "chroot"
#   pylon_run ENV CMD...   run CMD with ENV's venv first on PATH (ENV = test | ha),
#                          directly on the host or inside the Debian-sid rootfs.
#
# Chroot mode never leaves mounts behind: every call enters a private mount namespace
# (unshare), bind-mounts /dev, /proc, /sys and the checkout (at the same path), then
# chroots.  So concurrent runs cannot stack mounts, and `rm -rf .dev` is always safe.

PYLON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PYLON_DEV="${PYLON_ROOT}/.dev"
PYLON_ROOTFS="${PYLON_DEV}/rootfs"
PYLON_ROOTFS_STAMP="${PYLON_ROOTFS}/.pylon-rootfs-complete"
PYLON_MIN_PYTHON="3.14.2"
# Venvs inside the rootfs (chroot mode) live at a fixed path that does not depend on the checkout.
PYLON_CHROOT_VENVS="/opt/pylon-venvs"
# Download caches shared by every checkout on this machine (debootstrap .debs, pip wheels), so a
# fresh clone (CI) does not fetch everything again.  PYLON_CACHE_DIR=none disables them.
PYLON_CACHE="${PYLON_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pylon-ha}"
# Environment variables carried into the chroot (everything else is dropped).
PYLON_PASS_ENV=(CI TERM COLORTERM NO_COLOR FORCE_COLOR COLUMNS LINES TZ PYTEST_ADDOPTS
  HYPOTHESIS_PROFILE PYTHONHASHSEED PYTHONFAULTHANDLER PYTHONDEVMODE PYTHONWARNINGS
  GITHUB_ACTIONS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT PIP_NO_CACHE_DIR
  PYLON_SOAK PYLON_VERBOSE)
export PYLON_ROOT

pylon_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
pylon_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Print the first host interpreter whose version is >= PYLON_MIN_PYTHON (empty if none).
pylon_host_python() {
  local candidate
  if [[ -n "${PYLON_PYTHON:-}" ]]; then
    candidate="${PYLON_PYTHON}"
    if "${candidate}" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
      command -v "${candidate}"
    fi
    return 0
  fi
  for candidate in python3.14 python3.15 python3; do
    if command -v "${candidate}" >/dev/null 2>&1 &&
      "${candidate}" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
      command -v "${candidate}"
      return 0
    fi
  done
}

if [[ -z "${PYLON_MODE:-}" ]]; then
  if [[ -n "$(pylon_host_python)" ]]; then PYLON_MODE=host; else PYLON_MODE=chroot; fi
fi
export PYLON_MODE

# Path of venv NAME as seen by the commands run in it.
pylon_venv_dir() {
  if [[ "${PYLON_MODE}" == host ]]; then
    printf '%s/.venv/%s\n' "${PYLON_ROOT}" "$1"
  else
    printf '%s/%s\n' "${PYLON_CHROOT_VENVS}" "$1"
  fi
}

# Path of venv NAME as seen from the host (for existence checks).
pylon_venv_host_dir() {
  if [[ "${PYLON_MODE}" == host ]]; then
    pylon_venv_dir "$1"
  else
    printf '%s%s/%s\n' "${PYLON_ROOTFS}" "${PYLON_CHROOT_VENVS}" "$1"
  fi
}

pylon_rootfs_ready() { [[ -f "${PYLON_ROOTFS_STAMP}" ]]; }

# Run CMD... inside the rootfs as root with a clean whitelisted environment.
# Usage: pylon_chroot VENV_DIR CMD...   (VENV_DIR "" for none; its bin/ goes first on PATH).
# The working directory is the caller's when it lies inside the checkout, else the checkout.
pylon_chroot() {
  local venv="$1"
  shift
  local env_path="${venv:+${venv}/bin}" cwd="${PWD}"
  case "${cwd}/" in
    "${PYLON_ROOT}/"*) ;;
    *) cwd="${PYLON_ROOT}" ;;
  esac
  [[ "$(id -u)" == 0 ]] || pylon_die "the Python 3.14 environment runs in a chroot, which needs root"
  [[ -x "${PYLON_ROOTFS}/usr/bin/python3.14" ]] ||
    pylon_die "no Python 3.14 environment yet: run scripts/setup first"
  local -a envs=(
    "HOME=/root" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" "PYLON_ROOT=${PYLON_ROOT}" "PYLON_MODE=chroot"
    "PATH=${env_path:+${env_path}:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"
    "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
    "PIP_DISABLE_PIP_VERSION_CHECK=1"
  )
  local name
  for name in "${PYLON_PASS_ENV[@]}"; do
    if [[ -n "${!name+x}" ]]; then envs+=("${name}=${!name}"); fi
  done
  if [[ -n "${venv}" ]]; then envs+=("VIRTUAL_ENV=${venv}"); fi
  # shellcheck disable=SC2016  # expanded by the inner shell
  PYLON_CACHE="${PYLON_CACHE}" unshare --mount --propagation private -- /bin/bash -c '
    set -e
    rootfs="$1" checkout="$2" cwd="$3" nenv="$4"
    shift 4
    envs=("${@:1:nenv}")
    shift "$nenv"
    mount --rbind /dev "$rootfs/dev"
    mount --bind /proc "$rootfs/proc"
    mount --rbind /sys "$rootfs/sys"
    mkdir -p "$rootfs$checkout"
    mount --bind "$checkout" "$rootfs$checkout"
    if [[ "$PYLON_CACHE" != none && -d "$PYLON_CACHE/pip" ]]; then
      mkdir -p "$rootfs/root/.cache/pip"
      mount --bind "$PYLON_CACHE/pip" "$rootfs/root/.cache/pip"
    fi
    exec chroot "$rootfs" /usr/bin/env -i "${envs[@]}" /bin/sh -c "cd \"\$0\" && exec \"\$@\"" \
      "$cwd" "$@"
  ' pylon-chroot "${PYLON_ROOTFS}" "${PYLON_ROOT}" "${cwd}" "${#envs[@]}" "${envs[@]}" "$@"
}

# Warn when a venv's inputs changed after it was built (scripts/setup would reinstall).
pylon_warn_if_stale() {
  local stamp reqfile="$2"
  stamp="$(pylon_venv_host_dir "$1")/.pylon-stamp"
  [[ -f "${stamp}" ]] || return 0
  local input
  for input in "${PYLON_ROOT}/${reqfile}" "${PYLON_ROOT}/custom_components/pylontech/manifest.json"; do
    if [[ "${input}" -nt "${stamp}" ]]; then
      printf 'warning: %s changed since the %s environment was built; run scripts/setup\n' \
        "${input#"${PYLON_ROOT}"/}" "$1" >&2
      return 0
    fi
  done
}

# Run CMD... in venv ENV (test | ha).
pylon_run() {
  local env_name="$1"
  shift
  local venv
  venv="$(pylon_venv_dir "${env_name}")"
  [[ -f "$(pylon_venv_host_dir "${env_name}")/pyvenv.cfg" ]] ||
    pylon_die "environment '${env_name}' is missing: run scripts/setup first"
  if [[ "${PYLON_MODE}" == host ]]; then
    PATH="${venv}/bin:${PATH}" VIRTUAL_ENV="${venv}" "$@"
  else
    pylon_chroot "${venv}" "$@"
  fi
}
