#pragma once

// Runs the real tools the seed tests check against (ssh-keygen, isoinfo, cloud-init).
// A missing tool is a failure naming its Debian package, never a skip.

#include <catch2/catch.hpp>

#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

namespace vmr::test {

struct ToolRun {
    int status = -1;     // exit code
    std::string output;  // stdout and stderr together
};

// `cmd` is a shell command line built by the test from fixed words and temp paths.
inline ToolRun runTool(const std::string& cmd)
{
    ToolRun r;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// Fails the test unless `tool` is on PATH.
inline void requireTool(const std::string& tool, const std::string& package)
{
    auto r = runTool("command -v " + tool);
    INFO(tool + " is missing: install the Debian package " + package);
    REQUIRE(r.status == 0);
}

// Single quotes for a shell word (temp paths only).
inline std::string shq(const std::string& s)
{
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace vmr::test
