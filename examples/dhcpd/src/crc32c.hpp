// CRC-32C (Castagnoli), the checksum of journal records and snapshots.
//
// Chosen over the zlib CRC-32 because it detects more error patterns at the record sizes used
// here, and because the same polynomial is what ext4, iSCSI and many storage formats use, so tools
// to compute it are everywhere.
#ifndef GSDHCPD_CRC32C_HPP
#define GSDHCPD_CRC32C_HPP

#include <cstddef>
#include <cstdint>

namespace gsdhcpd {

// Pass the previous result as `crc` to continue a checksum over several pieces.
std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc = 0);

} // namespace gsdhcpd

#endif // GSDHCPD_CRC32C_HPP
