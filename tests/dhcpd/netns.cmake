# Self-test of netns.sh, the network-namespace helpers that the DHCP tests, benchmarks and demo
# share. Needs root; exits 77 (reported as skipped) without it.
add_test(NAME dhcpd_netns_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/netns_test.sh)
set_tests_properties(dhcpd_netns_test PROPERTIES
  TIMEOUT 30
  SKIP_RETURN_CODE 77
  LABELS dhcpd-peers)
