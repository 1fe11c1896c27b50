#pragma once
// Note [host memory check]: Linux overcommits - malloc of 6 GB succeeds on a machine with 5 GB
// free, and the process is killed (SIGKILL, no message) when it touches the pages. A model too
// large for the machine (the default MLP on a CSV of millions of columns: four arenas of
// features x 512 floats) used to end that way, after a minute of thrashing. Every cutrain buffer
// is written soon after it is allocated (zeroed, initialised or filled), so a CPU allocation that
// exceeds the memory still available cannot end well: it is refused with an Error instead, when
// it is large enough for the check to be worth a read of /proc (kCheckedBytes). Available means
// MemAvailable + SwapFree (/proc/meminfo), and no more than the cgroup's memory.max less its
// memory.current where a container limit is set (cgroup v2).

#include <cstdint>
#include <optional>
#include <string_view>

namespace cutrain::detail {

inline constexpr std::uint64_t kCheckedBytes = std::uint64_t{256} << 20;

/// MemAvailable + SwapFree in bytes from /proc/meminfo's text; nullopt without MemAvailable.
std::optional<std::uint64_t> meminfo_available(std::string_view meminfo);
/// memory.max - memory.current of a cgroup v2 in bytes; nullopt for "max" (no limit) or text
/// that is not a number.
std::optional<std::uint64_t> cgroup_available(std::string_view max, std::string_view current);
/// The bytes a new allocation can still take on this machine (the smaller of the two above),
/// or nullopt when neither can be read (not Linux).
std::optional<std::uint64_t> host_memory_available();

}  // namespace cutrain::detail
