#include "support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace vmr::test {

TempDir::TempDir()
{
    char tmpl[] = "/tmp/vmrt-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    path_ = tmpl;
}

namespace {

// Whether /proc/<pid>/cmdline names something under `dir`, or the process holds a file of it
// open (a hypervisor is handed its files as descriptors, and names no path).
bool mentions(const std::string& pid, const std::string& dir)
{
    // read(2), not a stream: a process that exits meanwhile makes the read fail (ESRCH), and
    // libstdc++'s streams throw on that.
    std::string args;
    UniqueFd fd(::open(("/proc/" + pid + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
    char buf[4096];
    ssize_t n = 0;
    while (fd && (n = ::read(fd.get(), buf, sizeof buf)) > 0) args.append(buf, static_cast<size_t>(n));
    if (args.find(dir + "/") != std::string::npos) return true;
    // increment(ec), not ++: the process may exit while its folder is listed.
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/" + pid + "/fd", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::error_code ignored;
        if (std::filesystem::read_symlink(it->path(), ignored).string().rfind(dir + "/", 0) == 0) return true;
    }
    return false;
}

// VMs outlive the vmrd that started them (that is the point of re-adoption), so a test's
// hypervisors would outlive the test. Every process whose command line names a path in this
// test's own folder, or that holds one open, (a mkdtemp name nobody else uses) is one the test started:
// SIGKILL it through a pidfd (no pid reuse race) and wait for the pidfd to say it exited.
void killProcessesUsing(const std::string& dir)
{
    std::vector<int> pidfds;
    for (pid_t p : processesUsing(dir)) {
        std::string pid = std::to_string(p);
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
        if (fd < 0) continue;
        // Checked again through the pidfd's process: the pid may have been reused meanwhile.
        if (mentions(pid, dir) && ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0)
            pidfds.push_back(fd);
        else
            ::close(fd);
    }
    for (int fd : pidfds) {
        pollfd p{fd, POLLIN, 0};
        (void)::poll(&p, 1, 5000);
        ::close(fd);
    }
}

}  // namespace

std::vector<pid_t> processesUsing(const std::string& dir)
{
    std::vector<pid_t> out;
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc", ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::string pid = it->path().filename();
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
        if (std::stol(pid) == ::getpid() || !mentions(pid, dir)) continue;
        out.push_back(static_cast<pid_t>(std::stol(pid)));
    }
    return out;
}

TempDir::~TempDir()
{
    killProcessesUsing(path_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void writeFile(const std::string& path, const std::string& data)
{
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> listDir(const std::string& path)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::unique_ptr<reactor::Reactor> makeReactor()
{
    auto r = reactor::Reactor::create();
    if (!r) {
        std::fprintf(stderr, "Reactor::create: %s\n", r.error().what().c_str());
        std::abort();
    }
    return std::move(*r);
}

std::pair<UniqueFd, UniqueFd> socketPair()
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        std::perror("socketpair");
        std::abort();
    }
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

bool eventuallyTrue(const std::function<bool()>& pred, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

bool haveProgram(const std::string& name)
{
    return reactor::findProgram(name).ok();
}

std::string guestDir()
{
    const char* env = std::getenv("VMR_TEST_GUEST");
    return env != nullptr ? env : "/tmp/vmr-guest";
}

bool haveGuest()
{
    return ::access((guestDir() + "/vmlinux").c_str(), R_OK) == 0;
}

}  // namespace vmr::test
