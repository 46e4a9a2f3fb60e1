#include "base/error.h"
#include "rpc/errors.h"

#include <catch2/catch.hpp>

#include <cctype>
#include <map>
#include <set>

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
