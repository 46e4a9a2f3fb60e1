#include "support.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

TempDir::~TempDir()
{
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
