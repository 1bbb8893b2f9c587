// The `process_*` metrics (the names of Prometheus's client libraries), read from the kernel at
// scrape time: only /proc/self, which the systemd unit's ProcSubset=pid leaves visible.
//
// Read by hand because the library that collects these figures, swift-metrics-extras'
// SystemMetrics, is not in this machine's package mirror, so the build cannot depend on it. It
// would also not fit as it is: it reads the boot time from /proc/stat, which ProcSubset=pid
// hides, and gives CPU time and start time in whole seconds. What is read here: getrusage(2) for
// CPU time, /proc/self/statm for memory, the entries of /proc/self/fd and RLIMIT_NOFILE for file
// descriptors, /proc/self/stat and two clocks for the start time.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// This process's CPU time, memory, file descriptors and start time.
package struct ProcessStatistics: Equatable {
    /// User and system CPU seconds of every thread (getrusage(2)).
    package var cpuSeconds: Double
    /// Resident and virtual memory (/proc/self/statm), in bytes.
    package var residentBytes: Int
    package var virtualBytes: Int
    /// Open file descriptors (the entries of /proc/self/fd), and their limit (RLIMIT_NOFILE).
    package var openFileDescriptors: Int
    package var maxFileDescriptors: Int

    package static func read() -> ProcessStatistics {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        let pages = (readText("/proc/self/statm") ?? "").split(separator: " ").prefix(2).compactMap { Int($0) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessStatistics(
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            residentBytes: pages.count == 2 ? pages[1] * page : 0,
            virtualBytes: pages.count == 2 ? pages[0] * page : 0,
            openFileDescriptors: openFileDescriptors(),
            maxFileDescriptors: Int(clamping: limit.rlim_cur))
    }

    /// When this process started, in Unix seconds: its start in clock ticks after boot
    /// (/proc/self/stat, field 22) on the wall clock. The boot time comes from the difference of
    /// CLOCK_REALTIME and CLOCK_BOOTTIME, because /proc/stat, which has it, is hidden in the unit.
    package static let startTime: Double = {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        let booted = Double(real.tv_sec - boot.tv_sec) + Double(real.tv_nsec - boot.tv_nsec) / 1e9
        // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
        guard let stat = readText("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return booted }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (the state), so field 22 is fields[19].
        guard fields.count > 19, let ticks = Double(fields[19]) else { return booted }
        return booted + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }()

    /// The entries of /proc/self/fd, less the one that reading the directory opens.
    private static func openFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { count += 1 }
        }
        return count - 1
    }

    /// A small file of /proc, whole; nil when it cannot be read.
    private static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
    }
}
