// kdlfmt: parse KDL documents and print them in normalised form (docs/kdl.md), or run the
// KDL test suite over a folder with input/ and expected_kdl/.
//
// Exit codes: 0 ok, 1 a document did not parse (or a suite case failed), 2 usage.

#include "config/kdl.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace kdl = vmr::config::kdl;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(Usage: kdlfmt [OPTIONS] FILE...
       kdlfmt [OPTIONS] --suite DIR

Parses each KDL document (FILE "-" is standard input) and prints it in the normalised
form of the KDL test suite, or prints the error with its line and column and exits 1.

Options:
  --kdl-version 2|1|auto  Dialect: KDL 2 only (default), KDL 1 only, or KDL 2 then KDL 1.
                          A "/- kdl-version N" marker on the first line always wins.
  --suite DIR             Run the test suite in DIR: every DIR/input/*.kdl must print as
                          DIR/expected_kdl/*.kdl byte for byte, and every *_fail*.kdl must
                          be rejected. Prints each failure and the counts per category.
  -h, --help              Show this help
)";

std::optional<std::string> readFile(const std::string& path)
{
    if (path == "-") {
        std::string text((std::istreambuf_iterator<char>(std::cin.rdbuf())),
                         std::istreambuf_iterator<char>());
        return text;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void printError(const std::string& file, const kdl::SyntaxError& e)
{
    std::fprintf(stderr, "%s:%u:%u: %s (KDL %d)\n", file.c_str(), e.pos.line, e.pos.column, e.message.c_str(),
                 static_cast<int>(e.version));
    if (!e.hint.empty()) std::fprintf(stderr, "  hint: %s\n", e.hint.c_str());
}

int formatFiles(const std::vector<std::string>& files, const kdl::ParseOptions& opts)
{
    int rc = kExitOk;
    for (const auto& f : files) {
        auto text = readFile(f);
        if (!text) {
            std::fprintf(stderr, "%s: cannot read: %s\n", f.c_str(), std::strerror(errno));
            rc = kExitFailed;
            continue;
        }
        auto r = kdl::parseDocument(*text, opts);
        if (!r.ok()) {
            printError(f, r.error);
            rc = kExitFailed;
            continue;
        }
        std::string out = kdl::format(*r.document);
        std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return rc;
}

struct Counts {
    size_t passed = 0;
    size_t total = 0;
};

int runSuite(const fs::path& dir, const kdl::ParseOptions& opts)
{
    std::error_code ec;
    fs::path inputDir = dir / "input";
    if (!fs::is_directory(inputDir, ec)) {
        std::fprintf(stderr,
                     "kdlfmt: the KDL test suite is missing: %s is not a folder\n"
                     "  hint: give the folder of the KDL project's test suite (input/, expected_kdl/)\n",
                     inputDir.c_str());
        return kExitFailed;
    }
    std::vector<fs::path> inputs;
    for (const auto& e : fs::directory_iterator(inputDir, ec))
        if (e.is_regular_file() && e.path().extension() == ".kdl") inputs.push_back(e.path());
    std::sort(inputs.begin(), inputs.end());
    if (inputs.empty()) {
        std::fprintf(stderr, "kdlfmt: no test cases in %s\n", inputDir.c_str());
        return kExitFailed;
    }
    Counts valid, invalid;
    for (const auto& in : inputs) {
        std::string name = in.filename().string();
        bool mustFail = name.find("_fail") != std::string::npos;
        auto text = readFile(in.string());
        auto r = text ? kdl::parseDocument(*text, opts) : kdl::ParseResult{};
        if (mustFail) {
            ++invalid.total;
            if (text && !r.ok())
                ++invalid.passed;
            else
                std::printf("FAIL %s: accepted, but it must be rejected\n", name.c_str());
            continue;
        }
        ++valid.total;
        auto expected = readFile((dir / "expected_kdl" / name).string());
        if (!expected) {
            std::printf("FAIL %s: no expected_kdl/%s\n", name.c_str(), name.c_str());
        } else if (!r.ok()) {
            std::printf("FAIL %s: rejected: %u:%u: %s\n", name.c_str(), r.error.pos.line, r.error.pos.column,
                        r.error.message.c_str());
        } else if (std::string got = kdl::format(*r.document); got != *expected) {
            std::printf("FAIL %s: output differs\n--- expected\n%s--- got\n%s---\n", name.c_str(),
                        expected->c_str(), got.c_str());
        } else {
            ++valid.passed;
        }
    }
    std::printf("valid documents (re-serialised byte for byte): %zu/%zu passed\n", valid.passed, valid.total);
    std::printf("invalid documents (_fail, rejected): %zu/%zu passed\n", invalid.passed, invalid.total);
    bool ok = valid.passed == valid.total && invalid.passed == invalid.total;
    std::printf("%s\n", ok ? "all passed" : "FAILED");
    return ok ? kExitOk : kExitFailed;
}

}  // namespace

int main(int argc, char** argv)
{
    kdl::ParseOptions opts;
    opts.dialect = kdl::Dialect::V2;
    std::optional<std::string> suite;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        if (a == "--kdl-version" || a == "--suite") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "kdlfmt: %s needs a value\n%s", argv[i], kUsage);
                return kExitUsage;
            }
            std::string_view v = argv[++i];
            if (a == "--suite") {
                suite = std::string(v);
            } else if (v == "2") {
                opts.dialect = kdl::Dialect::V2;
            } else if (v == "1") {
                opts.dialect = kdl::Dialect::V1;
            } else if (v == "auto") {
                opts.dialect = kdl::Dialect::V2ThenV1;
            } else {
                std::fprintf(stderr, "kdlfmt: --kdl-version takes 2, 1 or auto, not \"%s\"\n", argv[i]);
                return kExitUsage;
            }
            continue;
        }
        if (a.size() > 1 && a[0] == '-') {
            std::fprintf(stderr, "kdlfmt: unknown option %s\n%s", argv[i], kUsage);
            return kExitUsage;
        }
        files.emplace_back(a);
    }
    if (suite) {
        if (!files.empty()) {
            std::fprintf(stderr, "kdlfmt: --suite takes no FILE arguments\n");
            return kExitUsage;
        }
        return runSuite(*suite, opts);
    }
    if (files.empty()) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    return formatFiles(files, opts);
}
