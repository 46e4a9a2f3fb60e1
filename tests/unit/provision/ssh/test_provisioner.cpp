// Provisioners over a real sshd: inline, script and file steps in order, a failing step that
// stops the rest, output to the caller and to provision.log.

#include "provision/ssh/provisioner.h"
#include "sshd.h"

#include <sys/stat.h>

#include <vector>

using namespace vmr;
using namespace vmr::provision;
using namespace vmr::provision::test;

namespace {

mode_t modeOf(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

bool exists(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

struct Seen {
    size_t step;
    OutputStream stream;
    std::string data;
};

}  // namespace

TEST_CASE("describeStep and the script path")
{
    CHECK(describeStep(ShellInline{"apt-get update\napt-get install -y nginx"}) ==
          "shell inline: apt-get update ...");
    CHECK(describeStep(ShellInline{"echo hi"}) == "shell inline: echo hi");
    CHECK(describeStep(ShellInline{std::string(80, 'x')}) ==
          "shell inline: " + std::string(57, 'x') + " ...");
    CHECK(describeStep(ShellScript{"/src/scripts/setup.sh"}) == "shell script setup.sh");
    CHECK(describeStep(FileUpload{"conf/app.conf", "/etc/app.conf"}) == "file app.conf -> /etc/app.conf");
    CHECK(remoteScriptPath(2) == "/tmp/vmr-provision-2.sh");
}

TEST_CASE("provisioners run in order and stop at the first failure")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    std::string guest = dir / "guest";
    REQUIRE(::mkdir(guest.c_str(), 0755) == 0);
    std::string script = dir / "setup.sh";
    writeFile(script,
              "#!/bin/sh\necho \"setting up in $(pwd)\"\necho configured > " + guest + "/configured\n", 0644);
    std::string secret = dir / "secret.conf";
    writeFile(secret, "password=1\n", 0600);
    std::string log = dir / "provision.log";

    std::vector<ProvisionStep> steps;
    steps.push_back(ShellInline{"echo hello; echo warning >&2"});
    steps.push_back(ShellScript{script});
    steps.push_back(FileUpload{secret, guest + "/"});
    steps.push_back(ShellInline{"echo about to fail; exit 7"});
    steps.push_back(ShellInline{"touch " + guest + "/never"});

    std::vector<Seen> seen;
    std::vector<std::string> started;
    ProvisionOptions opts;
    opts.logPath = log;
    opts.remoteScriptDir = guest;
    opts.onStep = [&](size_t n, size_t total, std::string_view what) {
        started.push_back(std::to_string(n) + "/" + std::to_string(total) + " " + std::string(what));
    };
    opts.onOutput = [&](size_t n, OutputStream st, std::string_view d) {
        seen.push_back({n, st, std::string(d)});
    };
    auto res = runTask(*r, runProvisioners(*s, steps, opts), 60s);

    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::ProvisionFailed);
    CHECK(res.error().message() ==
          "Provisioning step 4/5 (shell inline: echo about to fail; exit 7) failed with "
          "exit code 7");
    CHECK_THAT(res.error().hint(), Catch::Contains(log));

    // Steps 1-4 ran, step 5 did not.
    REQUIRE(started.size() == 4);
    CHECK(started[1] == "2/5 shell script setup.sh");
    CHECK(readFile(guest + "/configured") == "configured\n");
    CHECK_FALSE(exists(guest + "/never"));
    // The script went where it should, runnable; the file kept its mode.
    CHECK(modeOf(remoteScriptPath(2, guest)) == 0755);
    CHECK(readFile(guest + "/secret.conf") == "password=1\n");
    CHECK(modeOf(guest + "/secret.conf") == 0600);

    // Output reached the caller with its step and stream.
    REQUIRE(seen.size() >= 4);
    bool warned = false;
    for (const auto& x : seen)
        if (x.step == 1 && x.stream == OutputStream::Stderr && x.data == "warning\n") warned = true;
    CHECK(warned);
    CHECK(seen.back().step == 4);
    CHECK(seen.back().data == "about to fail\n");

    std::string text = readFile(log);
    INFO(text);
    CHECK_THAT(text, Catch::StartsWith("==> provisioning " + s->target() + ": 5 steps\n"));
    CHECK_THAT(text, Catch::Contains("==> step 1/5: shell inline: echo hello; echo warning >&2\n"));
    CHECK_THAT(text, Catch::Contains("hello\n"));
    CHECK_THAT(text, Catch::Contains("warning\n"));
    CHECK_THAT(text, Catch::Contains(
                         "<== step 1/5: exit code 0\n==> step 2/5: shell script setup.sh\nsetting up in"));
    CHECK_THAT(text, Catch::Contains("<== step 2/5: exit code 0\n"));
    CHECK_THAT(text, Catch::Contains("==> step 3/5: file secret.conf -> " + guest +
                                     "/\n<== step 3/5: uploaded 11 "
                                     "bytes to " +
                                     guest + "/secret.conf, mode 0600\n"));
    CHECK_THAT(text, Catch::EndsWith("about to fail\n<== step 4/5: exit code 7 (failed)\n"
                                     "==> stopped: steps 5 to 5 were not run\n"));
    CHECK_THAT(text, !Catch::Contains("step 5/5"));

    // A second run appends to the same log.
    std::vector<ProvisionStep> ok = {ShellInline{"printf 'no newline'"}};
    auto again = runTask(*r, runProvisioners(*s, ok, opts), 30s);
    REQUIRE(again);
    CHECK_THAT(readFile(log),
               Catch::StartsWith(text) &&
                   Catch::EndsWith("==> provisioning " + s->target() +
                                   ": 1 step\n==> step 1/1: shell inline: printf 'no newline'\n"
                                   "no newline\n<== step 1/1: exit code 0\n==> provisioning done\n"));
}

TEST_CASE("provisioners check local files before running anything")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    std::string marker = dir / "ran";
    std::vector<ProvisionStep> steps = {ShellInline{"touch " + marker}, ShellScript{dir / "missing.sh"}};
    ProvisionOptions opts;
    opts.logPath = dir / "provision.log";
    auto res = runTask(*r, runProvisioners(*s, steps, opts), 30s);
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::NotFound);
    CHECK_THAT(res.error().what(), Catch::Contains("missing.sh"));
    CHECK_FALSE(exists(marker));

    steps = {FileUpload{dir.path(), "/tmp/x"}};
    res = runTask(*r, runProvisioners(*s, steps, opts), 30s);
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::InvalidArgument);
    CHECK_THAT(res.error().message(), Catch::Contains("not a regular file"));

    // The caller's opener decides (vmrd opens with the client's credentials): every local
    // file goes through it before the first step, and a refusal stops the run there.
    std::string a = dir / "a.sh";
    std::string b = dir / "b.txt";
    writeFile(a, "#!/bin/sh\ntouch " + marker + "\n", 0755);
    writeFile(b, "b\n");
    std::vector<std::string> opened;
    opts.openLocal = [&](const std::string& path) -> Result<UniqueFd> {
        opened.push_back(path);
        if (path == b) return Error(ErrorKind::PermissionDenied, "The client may not read " + path);
        return openLocalFile(path);
    };
    steps = {ShellScript{a}, FileUpload{b, dir / "b.copy"}};
    res = runTask(*r, runProvisioners(*s, steps, opts), 30s);
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::PermissionDenied);
    CHECK(opened == std::vector<std::string>{a, b});
    CHECK_FALSE(exists(marker));
}

TEST_CASE("a step that cannot upload fails with its cause")
{
    VMR_REQUIRE_SSHD();
    Server server;
    auto& [r, dir, sshd] = server;
    auto s = server.connect();

    std::string src = dir / "a.txt";
    writeFile(src, "a\n");
    std::vector<ProvisionStep> steps = {FileUpload{src, dir / "no/such/folder/a.txt"}, ShellInline{"true"}};
    ProvisionOptions opts;
    opts.logPath = dir / "provision.log";
    auto res = runTask(*r, runProvisioners(*s, steps, opts), 30s);
    REQUIRE_FALSE(res);
    CHECK(res.error().kind() == ErrorKind::ProvisionFailed);
    CHECK_THAT(res.error().what(), Catch::Contains("step 1/2") && Catch::Contains("no such file"));
    CHECK_THAT(readFile(opts.logPath), Catch::Contains("<== step 1/2: failed: ") &&
                                           Catch::Contains("==> stopped: steps 2 to 2 were not run"));
}
