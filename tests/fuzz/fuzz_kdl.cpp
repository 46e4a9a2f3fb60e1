// libFuzzer target for the KDL parser and writer, and the VMFile checker on top. Any input
// must parse or fail cleanly (nesting bounded by maxDepth), and whatever parses must survive
// a round trip: the normalised text parses as KDL 2 and normalises to itself; a valid
// VMFile's resolved form is a valid VMFile. The unit suite replays tests/fuzz/corpus/kdl/.

#include "config/kdl.h"
#include "config/vmfile.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kdl = vmr::config::kdl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view input(reinterpret_cast<const char*>(data), size);
    for (auto dialect : {kdl::Dialect::V2ThenV1, kdl::Dialect::V1}) {
        kdl::ParseOptions opts;
        opts.dialect = dialect;
        opts.maxDepth = 16;
        auto r = kdl::parseDocument(input, opts);
        if (!r.ok()) {
            if (r.error.message.empty() || r.error.pos.line == 0 || r.error.pos.column == 0) __builtin_trap();
            (void)kdl::lineText(input, r.error.pos.line);
            continue;
        }
        std::string once = kdl::format(*r.document);
        kdl::ParseOptions v2;
        v2.dialect = kdl::Dialect::V2;
        auto again = kdl::parseDocument(once, v2);
        if (!again.ok()) __builtin_trap();
        if (kdl::format(*again.document) != once) __builtin_trap();
    }
    vmr::config::VmFileOptions vo;
    vo.baseDir = "/base";
    vo.home = "/home/u";
    auto vmfile = vmr::config::parseVmFile(input, "fuzz.kdl", vo);
    (void)vmr::config::renderJson(vmfile);
    if (vmfile.ok()) {
        auto again = vmr::config::parseVmFile(vmr::config::renderDefinitions(vmfile), "again.kdl", vo);
        if (!again.ok() || again.vms.size() != vmfile.vms.size()) __builtin_trap();
    } else if (vmr::config::renderDiagnostics(vmfile).empty()) {
        __builtin_trap();
    }
    return 0;
}
