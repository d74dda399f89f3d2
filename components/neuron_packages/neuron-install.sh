#!/bin/sh
# Adds Neuron's package repository, then installs Neuron OS packages at exactly the release table's
# versions (config/neuron_releases.py, passed by the CDK app as a build argument), in one transaction:
#
#   neuron-install.sh dnf|yum|apt NAME=VERSION [NAME=VERSION ...]
#
# apt needs curl, gpg and CA certificates installed first.
#
# Neuron's packages carry a build suffix: the RPM version field reads 2.33.10.0_3dcef56f0 (release 1)
# and the Debian version 2.33.10.0-3dcef56f0, while older builds read plain 2.26.14.0; the release
# manifest (aws-neuron-sdk src/helperscripts/n2-manifest.json) lists the plain number only. So
# `dnf install name-2.33.10.0` can answer "No match for argument", and Neuron's own installer writes
# `name-VERSION*` (n2-helper.py), which also admits 2.33.10.01 or 2.33.10.0.1. This script asks the
# repository what it holds, keeps the builds whose version is VERSION alone or VERSION plus a hex build
# suffix, and installs the newest of those by its exact version: every other version is refused, and
# nothing matching stops the build with one line naming the package.
set -eu

die() {
  echo "neuron-install: $*" >&2
  exit 1
}

[ "$#" -ge 2 ] || die "usage: neuron-install.sh dnf|yum|apt NAME=VERSION..."
manager="$1"
shift
case "${manager}" in
  dnf | yum | apt) ;;
  *) die "unknown package manager '${manager}': expected dnf, yum or apt" ;;
esac

# Every version the repository offers for one package, one a line: "EPOCH:VERSION-RELEASE" or
# "VERSION-RELEASE" for RPMs, the Debian version for apt. (sed and grep only: the script assumes no awk in
# the base images.)
available_versions() {
  quoted="$(printf '%s' "$1" | sed 's/[.]/\\./g')"
  if [ "${manager}" = apt ]; then
    # "name | 2.33.10.0-3dcef56f0 | https://apt.repos.neuron.amazonaws.com jammy/main amd64 Packages"
    apt-cache madison "$1" | sed -n "s/^ *${quoted} *| *\([^ |]*\) *|.*/\1/p"
  else
    # "name.x86_64  2.33.10.0_3dcef56f0-1  neuron": yum and dnf wrap a long name onto a line of its own,
    # so the words are read one a line, and the version is the word after "name.<arch>".
    "${manager}" --quiet --showduplicates list available "$1" 2>/dev/null | tr -s ' \t' '\n' \
      | grep -A 1 "^${quoted}\." | grep -v -e "^${quoted}\." -e '^--$'
  fi
}

# Neuron's repositories and signing key (aws-neuron-sdk setup guides). AWS's own Ubuntu 24.04 Neuron
# images use the jammy channel (aws-neuron/deep-learning-containers pytorch/inference/2.9.0/Dockerfile.neuronx).
# SYSROOT moves the files written here under another root (the tests' simulated image); empty in a build.
NEURON_KEY="GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB"
sysroot="${SYSROOT:-}"
if [ "${manager}" = apt ]; then
  mkdir -p "${sysroot}/etc/apt/keyrings" "${sysroot}/etc/apt/sources.list.d"
  curl -fsSL -o "${sysroot}/tmp/${NEURON_KEY}" "https://apt.repos.neuron.amazonaws.com/${NEURON_KEY}"
  gpg --dearmor < "${sysroot}/tmp/${NEURON_KEY}" > "${sysroot}/etc/apt/keyrings/neuron.gpg"
  rm -f "${sysroot}/tmp/${NEURON_KEY}"
  echo "deb [signed-by=/etc/apt/keyrings/neuron.gpg] https://apt.repos.neuron.amazonaws.com jammy main" \
    > "${sysroot}/etc/apt/sources.list.d/neuron.list"
  apt-get update
else
  mkdir -p "${sysroot}/etc/yum.repos.d"
  printf '[neuron]\nname=Neuron YUM Repository\nbaseurl=https://yum.repos.neuron.amazonaws.com\nenabled=1\nmetadata_expire=0\n' \
    > "${sysroot}/etc/yum.repos.d/neuron.repo"
  rpm --import "https://yum.repos.neuron.amazonaws.com/${NEURON_KEY}"
fi

specs=""
for pin in "$@"; do
  name="${pin%%=*}"
  version="${pin#*=}"
  [ -n "${name}" ] && [ -n "${version}" ] && [ "${name}" != "${pin}" ] || die "expected NAME=VERSION, got '${pin}'"
  printf '%s' "${version}" | grep -Eq '^[0-9]+(\.[0-9]+)*$' || die "${name}: expected a version such as 2.33.10.0, got '${version}'"
  escaped="$(printf '%s' "${version}" | sed 's/\./\\./g')"
  if [ "${manager}" = apt ]; then
    pattern="^([0-9]+:)?${escaped}(-[0-9a-f]+)?$"
  else
    pattern="^([0-9]+:)?${escaped}(_[0-9a-f]+)?-[^-]+$"
  fi
  offered="$(available_versions "${name}")" || offered=""
  match="$(printf '%s\n' "${offered}" | grep -E "${pattern}" | sort -V | tail -n 1)" || true
  if [ -z "${match}" ]; then
    nearest="$(printf '%s\n' "${offered}" | grep -v '^$' | sort -V | tail -n 3 | tr '\n' ' ')" || true
    nearest="${nearest% }"
    die "no ${name} ${version} in the Neuron ${manager} repository (newest there: ${nearest:-none})"
  fi
  if [ "${manager}" = apt ]; then
    specs="${specs} ${name}=${match}"
  else
    specs="${specs} ${name}-${match}"
  fi
done

echo "neuron-install: ${specs# }"
# One transaction: the resolver cannot pull in another runtime as a dependency of the first package.
# shellcheck disable=SC2086  # one word per exact package spec
if [ "${manager}" = apt ]; then
  apt-get install -y --no-install-recommends ${specs}
else
  "${manager}" install -y ${specs}
fi
