#include "base/error.h"
#include "rpc/errors.h"

#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace vmr;
using namespace vmr::rpc;

namespace {

constexpr int kKinds = static_cast<int>(ErrorKind::Count_);

ErrorKind kindAt(int i)
{
    return static_cast<ErrorKind>(i);
}

}  // namespace

TEST_CASE("the standard kinds use the JSON-RPC 2.0 codes", "[errors]")
{
    CHECK(errorCode(ErrorKind::ParseError) == -32700);
    CHECK(errorCode(ErrorKind::InvalidRequest) == -32600);
    CHECK(errorCode(ErrorKind::MethodNotFound) == -32601);
    CHECK(errorCode(ErrorKind::InvalidParams) == -32602);
    CHECK(errorCode(ErrorKind::InvalidArgument) == -32602);
    CHECK(errorCode(ErrorKind::InvalidName) == -32602);
    CHECK(errorCode(ErrorKind::Internal) == -32603);
    CHECK(errorCode(ErrorKind::System) == -32603);
    CHECK(errorCode(ErrorKind::VmNotFound) == -32003);
}

TEST_CASE("every other kind has its own code in the server range", "[errors]")
{
    const std::set<int> standard = {-32700, -32600, -32601, -32602, -32603};
    std::map<int, ErrorKind> owner;
    for (int i = 0; i < kKinds; ++i) {
        ErrorKind k = kindAt(i);
        int code = errorCode(k);
        INFO(kindName(k) << " -> " << code);
        if (standard.count(code) != 0) continue;
        CHECK(code >= kServerErrorFirst);
        CHECK(code <= kServerErrorLast);
        auto [it, fresh] = owner.emplace(code, k);
        CHECK(fresh);  // no two non-standard kinds share a code
    }
    // Only the documented aliases share the standard codes.
    int shared = 0;
    for (int i = 0; i < kKinds; ++i) shared += standard.count(errorCode(kindAt(i))) != 0 ? 1 : 0;
    CHECK(shared == 8);
}

TEST_CASE("kindFromCode round-trips every kind", "[errors]")
{
    for (int i = 0; i < kKinds; ++i) {
        ErrorKind k = kindAt(i);
        INFO(kindName(k));
        // With data.kind: exact.
        CHECK(kindFromCode(errorCode(k), kindName(k)) == k);
        // Without data.kind: exact for kinds owning their code, the canonical kind otherwise.
        ErrorKind fromCode = kindFromCode(errorCode(k), "");
        CHECK(errorCode(fromCode) == errorCode(k));
    }
    CHECK(kindFromCode(-32602, "") == ErrorKind::InvalidParams);
    CHECK(kindFromCode(-32603, "") == ErrorKind::Internal);
    CHECK(kindFromCode(-32003, "") == ErrorKind::VmNotFound);
    // An unknown name falls back to the code; an unknown code to Internal.
    CHECK(kindFromCode(-32003, "vm.from_the_future") == ErrorKind::VmNotFound);
    CHECK(kindFromCode(-32099, "") == ErrorKind::Internal);
    CHECK(kindFromCode(42, "") == ErrorKind::Internal);
    // The name wins over the code when known.
    CHECK(kindFromCode(-32603, "timeout") == ErrorKind::Timeout);
}

TEST_CASE("hints and default messages", "[errors]")
{
    CHECK(defaultHint(ErrorKind::VmNotFound) == "Run `vmrctl list` to see VMs");
    for (int i = 0; i < kKinds; ++i) {
        ErrorKind k = kindAt(i);
        INFO(kindName(k));
        CHECK_FALSE(defaultHint(k).empty());
        CHECK_FALSE(defaultMessage(k).empty());
        CHECK(std::isupper(static_cast<unsigned char>(defaultMessage(k)[0])));
    }
}

TEST_CASE("docs/protocol.md's table is the error table", "[errors]")
{
    // | -32003 | `vm.not_found` | meaning | default hint |
    std::ifstream in(std::string(VMR_SOURCE_ROOT) + "/docs/protocol.md");
    REQUIRE(in);
    std::map<std::string, std::pair<int, std::string>> documented;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("| -32", 0) != 0) continue;
        std::vector<std::string> cells;
        size_t at = 1;
        for (size_t bar = line.find(" | ", at); bar != std::string::npos; bar = line.find(" | ", at)) {
            cells.push_back(line.substr(at, bar - at));
            at = bar + 3;
        }
        cells.push_back(line.substr(at, line.size() - at - 2));
        REQUIRE(cells.size() == 4);
        auto trim = [](std::string s) {
            while (!s.empty() && (s.front() == ' ' || s.front() == '`')) s.erase(0, 1);
            while (!s.empty() && (s.back() == ' ' || s.back() == '`')) s.pop_back();
            return s;
        };
        documented[trim(cells[1])] = {std::stoi(trim(cells[0])), trim(cells[3])};
    }
    CHECK(documented.size() == static_cast<size_t>(kKinds));
    for (int i = 0; i < kKinds; ++i) {
        ErrorKind k = kindAt(i);
        INFO(kindName(k));
        auto it = documented.find(std::string(kindName(k)));
        REQUIRE(it != documented.end());
        CHECK(it->second.first == errorCode(k));
        // The docs write JSON in code spans; the hint itself has none of the backquotes.
        std::string hint = it->second.second;
        std::string plain;
        for (char c : hint)
            if (c != '`') plain += c;
        std::string expected;
        for (char c : defaultHint(k))
            if (c != '`') expected += c;
        CHECK(plain == expected);
    }
}
