#!/usr/bin/env bash
# System tools the tests and benchmarks use: dig (bind9-dnsutils), dnsperf, dnsmasq (the DNS
# benchmark's reference), chromium and chromedriver (the web UI's browser tests, tests/browser). Installed from Debian's packages when missing and possible; otherwise a
# warning says what is missing (the dig tests skip, the DNS benchmark reports the gap).
set -u
declare -A PACKAGE=([dig]=bind9-dnsutils [dnsperf]=dnsperf [dnsmasq]=dnsmasq-base
                    [chromium]=chromium [chromedriver]=chromium-driver)
missing=()
for tool in dig dnsperf dnsmasq chromium chromedriver; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${PACKAGE[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "installing ${missing[*]}"
  if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
     { $sudo apt-get update -q >/dev/null 2>&1 &&
       DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "warning: could not install ${missing[*]} (apt-get as root needed): dig and browser tests skip, the DNS benchmark cannot compare" >&2
exit 0
