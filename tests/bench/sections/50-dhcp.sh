#!/usr/bin/env bash
# bench-targets: gracefulstop-dhcpd gsdhcp_bench_probe gsdhcp_bench_leases
# DHCP servers side by side (gracefulstop-dhcpd, ISC dhcpd, Kea): see tests/bench/dhcp/run.sh.
exec bash "$BENCH_ROOT/tests/bench/dhcp/section.sh"
